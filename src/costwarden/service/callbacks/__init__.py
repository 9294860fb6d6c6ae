"""Inbound callbacks from channels: Slack buttons, Teams and email approval links, Jira webhooks.

Each callback verifies its signature over the raw body before parsing, records the decision
once through ``costwarden.notify.responses`` and answers fast.
"""

from fastapi import APIRouter

from costwarden.service.callbacks import jira, links, slack

router = APIRouter()
router.include_router(slack.router)
router.include_router(links.router)
router.include_router(jira.router)
