"""What the hub keeps on disk: the SQLite store, the event log, saved sessions and the
private, locked data folder."""
