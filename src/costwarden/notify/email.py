"""Channel type email (being built)."""
