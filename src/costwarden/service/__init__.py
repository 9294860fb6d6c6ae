"""``costwarden serve``: the long-lived service with its scheduler, REST API and webhooks."""
