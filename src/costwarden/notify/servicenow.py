"""Channel type servicenow (being built)."""
