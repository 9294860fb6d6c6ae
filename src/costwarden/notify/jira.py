"""Channel type jira (being built)."""
