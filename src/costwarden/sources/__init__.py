"""Adapters that read cost data from outside systems and yield domain records."""
