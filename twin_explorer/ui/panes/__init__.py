"""The window's panes: each built whole from its part of the app model; none knows another."""
