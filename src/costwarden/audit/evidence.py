"""The evidence fields of an audit entry's ``detail``, shared by every writer.

Writers put these keys in ``detail`` where they apply, so a reviewer or a SIEM finds the same
evidence under the same name in every kind of entry:

``window``
    The data the entry is based on: ``{"start": ..., "end": ...}`` as ISO dates or timestamps.
``model``
    The model that produced a number: ``{"name": ..., "version": ...}``.
``parameters``
    The settings or inputs that shaped the result (thresholds, levels, horizons).
``prompt`` and ``response``
    For text written by a language model: the exact prompt sent and the response received,
    with ``llm`` naming the model (``{"name": ..., "version": ...}``). No such text exists yet;
    the fields are reserved so that entries written later carry them under these names.

Any other key is specific to the kind of entry. Secrets never belong in ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def evidence(
    *,
    window: tuple[date | datetime | None, date | datetime | None] | None = None,
    model: str | None = None,
    model_version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    prompt: str | None = None,
    response: str | None = None,
    llm: str | None = None,
    llm_version: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build a ``detail`` mapping with the shared evidence keys; unset ones are left out."""
    detail: dict[str, Any] = {}
    if window is not None:
        detail["window"] = {"start": window[0], "end": window[1]}
    if model is not None:
        detail["model"] = {"name": model, "version": model_version}
    if parameters is not None:
        detail["parameters"] = dict(parameters)
    if prompt is not None or response is not None:
        detail["prompt"] = prompt
        detail["response"] = response
        detail["llm"] = {"name": llm, "version": llm_version}
    detail.update(fields)
    return detail
