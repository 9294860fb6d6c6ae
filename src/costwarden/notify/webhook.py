"""Channel type webhook (being built)."""
