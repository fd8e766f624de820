"""Window chrome: dialogs, notices, the toolbar, window state and settings, shared by the
window and its panes."""
