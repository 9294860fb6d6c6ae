"""The JSON Schema of policy files, generated from the pydantic models.

``costwarden policy schema --output docs/schemas/policy.schema.json`` writes it, and a test fails
when the stored file differs. Editors with YAML language support validate policy files against
it; the loader's semantic checks (action names, CEL, selectors) go further than the schema can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from costwarden.policy.model import PolicyFileModel

SCHEMA_ID = "https://costwarden.dev/schemas/policy/1/policy.schema.json"


def policy_schema() -> dict[str, Any]:
    schema = PolicyFileModel.model_json_schema()
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "costwarden policy file",
        **schema,
    }


def render_schema() -> str:
    return json.dumps(policy_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path) -> bool:
    """Write the schema to ``path``; return whether the file changed."""
    text = render_schema()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
