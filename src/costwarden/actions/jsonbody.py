"""The JSON object of an HTTP response, for the clients that actions write through."""

from __future__ import annotations

from typing import Any

import httpx


def json_object(response: httpx.Response) -> dict[str, Any]:
    """Return the response body as a JSON object.

    Raise ``ValueError`` whose message describes the body, such as "a body that is not JSON" or
    "a JSON list, not an object", so callers can put it into their own error.
    """
    try:
        data = response.json()
    except ValueError as exc:
        raise ValueError("a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    return data
