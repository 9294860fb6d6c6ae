"""Sample repository files, requests and contexts shared by the gitops action tests."""

from __future__ import annotations

from typing import Any

from costwarden.actions.context import ActionContext
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, ActionScope

PROFILE_PATH = "clusters/prod-eu/profile.yaml"
PROFILE = """\
# Palette cluster profile values for prod-eu; reviewed by the platform team.
cluster: prod-eu
machinePools:
  - name: control-plane
    size: 3
    instanceType: m5.xlarge
  - name: worker   # general workloads
    size: 6        # scaled up for the Q3 launch
    instanceType: "m5.2xlarge"
    capacityType: on-demand
"""

TFVARS_PATH = "terraform/prod-eu.tfvars"
TFVARS = """\
# Managed by Terraform; costwarden edits single values.
cluster_name = "prod-eu"
machine_pools = [
  {
    name          = "worker"
    count         = 6 # Q3 launch
    instance_type = "m5.2xlarge"
  },
]
"""

SCOPE = ActionScope(kind="machine_pool", cluster_uid="c-7f3a", cluster="prod-eu", name="worker")


def repo_options(options: dict[str, Any]) -> dict[str, Any]:
    """Add the profile file rule to repository options."""
    files = {
        "profile": {
            "path": "clusters/{cluster}/profile.yaml",
            "pool_key": "machinePools[name={pool}].{field}",
        }
    }
    return {"files": files, **options}


def make_context(repositories: dict[str, dict[str, Any]], sleeps: list[float]) -> ActionContext:
    settings = Settings.model_validate({"actions": {"gitops": {"repositories": repositories}}})
    return ActionContext(settings=settings, tenant="acme", sleep=sleeps.append)


def resize_request(
    repository: str = "fleet", size: int = 4, expected: int | None = 6, subject: str = "rec-101"
) -> ActionRequest:
    params = {
        "repository": repository,
        "pool": "worker",
        "size": size,
        "reason": "The worker pool ran below 30 % CPU for 14 days.",
        "estimated_savings": "812.40 USD per month",
        "evidence": {"p95 CPU": "27 %", "window": "2026-05-01 to 2026-05-14"},
        "link": "https://costwarden.example.com/api/v1/recommendations/rec-101",
    }
    return ActionRequest(
        action="gitops.pull_request",
        scope=SCOPE,
        params=params,
        subject_kind="recommendation",
        subject_id=subject,
        expected={} if expected is None else {"size": expected},
    )
