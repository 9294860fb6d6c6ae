"""Channel type teams (being built)."""
