"""What panes and chrome share: theme, icons, background tasks, small widgets."""
