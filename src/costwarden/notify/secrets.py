"""Secret settings that come from the config file, an environment variable or a file.

A secret field accepts a literal string, ``{env: NAME}`` or ``{file: PATH}``. The value is
read once when the settings load and is held as a ``SecretStr``, so it prints as ``**********``
in logs, errors and ``config check``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr


def _resolve(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    keys = set(value)
    if keys == {"env"}:
        name = str(value["env"])
        if name not in os.environ:
            raise ValueError(
                f"environment variable {name} is not set; export it or give the secret inline "
                "or as {file: PATH}"
            )
        if not os.environ[name].strip():
            raise ValueError(f"environment variable {name} is empty; put the secret in it")
        return os.environ[name]
    if keys == {"file"}:
        path = Path(str(value["file"])).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(
                f"cannot read secret file {path}: {exc.strerror}; mount the file or give the "
                "secret as {env: NAME}"
            ) from None
        if not text:
            raise ValueError(f"secret file {path} is empty; write the secret into it")
        return text
    raise ValueError("a secret is a string, {env: NAME} or {file: PATH}")


Secret = Annotated[SecretStr, BeforeValidator(_resolve)]
"""A secret read from the settings, from ``{env: NAME}`` or from ``{file: PATH}``."""
