"""Fit text into a channel's size limits, ending with a link to the full alert.

A message that is too long is trimmed, never rejected: the text is cut at a word boundary and
ends with an ellipsis and, when there is room, the link to the full alert.
"""

from __future__ import annotations

ELLIPSIS = "…"


def trim_text(text: str, limit: int, link: str | None = None) -> str:
    """Return ``text`` cut to at most ``limit`` characters, ending with ``link`` when it fits."""
    if len(text) <= limit:
        return text
    tail = f"{ELLIPSIS} Full alert: {link}" if link else ELLIPSIS
    if len(tail) >= limit:
        tail = ELLIPSIS
    room = limit - len(tail)
    cut = text[:room]
    space = cut.rfind(" ")
    if space > room // 2:
        cut = cut[:space]
    return cut.rstrip() + tail


def trim_bytes(text: str, limit: int, link: str | None = None) -> str:
    """Like ``trim_text``, for a limit in UTF-8 bytes."""
    if len(text.encode()) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if len(trim_text(text, middle, link).encode()) <= limit:
            low = middle
        else:
            high = middle - 1
    return trim_text(text, low, link)
