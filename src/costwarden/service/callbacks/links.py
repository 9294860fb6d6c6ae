"""Callback routes: links (being built)."""

from fastapi import APIRouter

router = APIRouter()
