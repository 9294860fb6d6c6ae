"""Channel type pagerduty (being built)."""
