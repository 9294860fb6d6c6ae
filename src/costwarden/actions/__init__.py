"""Actions that apply approved changes, their registry and the runner that calls them.

Importing a module that defines actions registers them in ``ACTIONS``; ``load_builtin``
imports every built-in one. This package imports nothing else on purpose, because the policy
guard imports the registry and the runner imports the guard.
"""

from __future__ import annotations

import importlib

from costwarden.actions.registry import ACTIONS, ActionRegistry

BUILTIN_MODULES = (
    "costwarden.actions.palette",
    "costwarden.actions.kubernetes",
    "costwarden.actions.gitops",
    "costwarden.actions.ticket",
)
"""Modules that register the built-in actions."""


def load_builtin() -> ActionRegistry:
    """Import the modules of the built-in actions and return the filled registry."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return ACTIONS
