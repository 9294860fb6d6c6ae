"""Inbound webhooks: Palette alert channels and signed cost events."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
