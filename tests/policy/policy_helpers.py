"""Test doubles and builders shared by the policy tests.

The registry here contains doubles with the names and the safe/reversible flags of the built-in
actions, so the policy tests do not depend on which action modules exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from costwarden.actions.registry import Action, ActionRegistry
from costwarden.domain.governance import ActionRequest, ActionScope

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)

FLAGS: dict[str, tuple[bool, bool]] = {
    "palette.resize_pool": (True, True),
    "palette.set_instance_type": (False, True),
    "palette.set_capacity_type": (False, True),
    "palette.tag_cluster": (True, True),
    "kubernetes.pause_namespace": (True, True),
    "gitops.pull_request": (True, True),
    "ticket": (True, True),
}
"""Action name to (safe, reversible)."""

SAFE_ACTIONS = sorted(name for name, flags in FLAGS.items() if all(flags))
UNSAFE_ACTIONS = sorted(name for name, flags in FLAGS.items() if not all(flags))


def make_registry() -> ActionRegistry:
    registry = ActionRegistry()
    for name, (safe, reversible) in FLAGS.items():
        double = type(
            f"Double{len(registry.names())}",
            (Action,),
            {"safe": safe, "reversible": reversible, "__doc__": f"Test double of {name}."},
        )
        registry.register(name)(double)
    return registry


REGISTRY = make_registry()


def pool_request(
    action: str = "palette.resize_pool",
    *,
    labels: dict[str, str] | None = None,
    cluster: str = "ml-eks",
    cloud: str = "aws",
    size: int = 2,
    **scope: Any,
) -> ActionRequest:
    fields: dict[str, Any] = {
        "kind": "machine_pool",
        "cluster_uid": "c-1",
        "cluster": cluster,
        "name": "gpu-a",
        "project": "ml",
        "cloud": cloud,
        "labels": labels or {},
        **scope,
    }
    return ActionRequest(
        action=action,
        scope=ActionScope(**fields),
        params={"size": size},
        subject_kind="recommendation",
        subject_id="rec-1",
        expected={"size": 4},
    )
