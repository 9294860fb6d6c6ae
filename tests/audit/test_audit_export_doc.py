"""The standalone verification script in docs/audit.md verifies a real export."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import TENANT, fill

from costwarden.audit import GENESIS_HASH, append, head, iter_entries, write_jsonl
from costwarden.store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


@pytest.fixture(scope="module")
def snippet() -> dict[str, Any]:
    """Run the Python block of the doc's verification section and return its names."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Verifying an export independently", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/audit.md has no python block in its verification section"
    names: dict[str, Any] = {"__name__": "audit_doc_snippet"}
    exec(compile(match.group(1), str(DOC), "exec"), names)  # noqa: S102 - our own doc
    return names


def _export(store: Store) -> list[str]:
    buffer = io.StringIO()
    with store.transaction() as session:
        write_jsonl(iter_entries(session, TENANT), buffer)
    return buffer.getvalue().splitlines(keepends=True)


def test_snippet_verifies_export(snippet: dict[str, Any], store: Store) -> None:
    fill(store, 3)
    with store.transaction() as session:
        append(
            session, tenant=TENANT, kind="recommendation", subject="r:1", actor="Zoë",
            summary="résumé ✓", detail={"savings": {"per_month": "12.30"}, "ratio": 1e-07},
        )
        anchor = head(session, TENANT).anchor()
    lines = _export(store)

    assert snippet["verify_export"](lines, first_prev=GENESIS_HASH, anchor=anchor) == []


def test_snippet_detects_tampering(snippet: dict[str, Any], sqlite_store: Store) -> None:
    fill(sqlite_store, 4)
    with sqlite_store.transaction() as session:
        anchor = head(session, TENANT).anchor()
    lines = _export(sqlite_store)
    edited = json.loads(lines[1])
    edited["summary"] = "edited"
    changed = [lines[0], json.dumps(edited) + "\n", *lines[2:]]

    assert snippet["verify_export"](changed) == [
        f"seq {edited['seq']}: content does not match entry_hash"
    ]
    missing = snippet["verify_export"]([lines[0], *lines[2:]])
    assert missing == [
        f"seq {json.loads(lines[2])['seq']}: prev_hash does not match the previous entry"
    ]
    truncated = snippet["verify_export"](lines[:-1], anchor=anchor)
    assert truncated == [f"the export does not end at anchor {anchor}"]
