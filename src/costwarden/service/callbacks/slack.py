"""Callback routes: slack (being built)."""

from fastapi import APIRouter

router = APIRouter()
