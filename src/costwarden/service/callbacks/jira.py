"""Callback routes: jira (being built)."""

from fastapi import APIRouter

router = APIRouter()
