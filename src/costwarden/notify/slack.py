"""Channel type slack (being built)."""
