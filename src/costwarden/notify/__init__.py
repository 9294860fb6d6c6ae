"""Notification channels, routing, noise control and the delivery outbox.

Importing the package registers every built-in channel type in ``CHANNELS``.
"""

from costwarden.notify import (  # noqa: F401  (each module registers its channel type)
    email,
    jira,
    pagerduty,
    servicenow,
    slack,
    teams,
    webhook,
)
from costwarden.notify.notice import Notice, NoticeAction, NoticeContributor
from costwarden.notify.registry import (
    CHANNELS,
    ActionLinks,
    Channel,
    ChannelContext,
    ChannelSettings,
    Delivery,
    InboundResponse,
    SendResult,
)

__all__ = [
    "CHANNELS",
    "ActionLinks",
    "Channel",
    "ChannelContext",
    "ChannelSettings",
    "Delivery",
    "InboundResponse",
    "Notice",
    "NoticeAction",
    "NoticeContributor",
    "SendResult",
]
