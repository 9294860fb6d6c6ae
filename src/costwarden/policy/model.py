"""The policy file format: pydantic models with unknown keys rejected.

A file contains a ``policies`` list. Each policy selects resources, may narrow them with a CEL
condition, and lists the actions it allows with a mode each. ``docs/schemas/policy.schema.json``
is generated from these models.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costwarden.domain.governance import Mode

ScopeKind = Literal["cluster", "machine_pool", "namespace", "repository"]

POLICY_NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,98}[a-z0-9])?$"

Patterns = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectorModel(_Strict):
    """The resources a policy applies to. Every part given must match, and an omitted part
    matches any resource. Name patterns are shell-style globs (``*``, ``?``, ``[abc]``)."""

    kinds: list[ScopeKind] | None = Field(
        None, min_length=1, description="Scope kinds: cluster, machine_pool, namespace, repository."
    )
    clusters: Patterns | None = Field(None, description="Cluster names or uids; globs allowed.")
    projects: Patterns | None = Field(None, description="Palette project names; globs allowed.")
    clouds: Patterns | None = Field(
        None, description="Cloud types such as aws, azure, gcp, vsphere; globs allowed."
    )
    namespaces: Patterns | None = Field(None, description="Namespace names; globs allowed.")
    names: Patterns | None = Field(
        None,
        description="Resource names (machine pool, namespace or repository); globs allowed.",
    )
    labels: str | None = Field(
        None,
        min_length=1,
        description="Kubernetes label selector over the scope's labels and Palette tags, such as "
        "'env=production,team in (ml,data)'.",
    )


class ActionRuleModel(_Strict):
    """One action a policy allows, and how it may run."""

    action: str = Field(
        min_length=1, description="Registered action name, such as palette.resize_pool."
    )
    mode: Mode = Field(
        description="monitor: report only; approve: run after the required approvals; auto: run "
        "without approval (only safe, reversible actions, never on production)."
    )
    approvers: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Approver groups (approvals.groups) whose members may approve; empty: anyone "
        "who may approve through a channel, the API or the CLI.",
    )
    min_approvals: int = Field(
        1, ge=1, le=5, description="Approvals from different people the action needs."
    )


class PolicyModel(_Strict):
    """One cost policy."""

    name: str = Field(
        json_schema_extra={"pattern": POLICY_NAME_PATTERN},
        description="Unique name: lowercase letters, digits, '.', '_' and '-', at most 100 "
        "characters.",
    )
    description: str | None = Field(None, description="What the policy is for, for people.")
    selector: SelectorModel = Field(
        default_factory=SelectorModel, description="Which resources the policy applies to."
    )
    condition: str | None = Field(
        None,
        min_length=1,
        description="CEL expression over cluster, pool, namespace, workload, recommendation, "
        "alert, scope and now; the policy applies only when it is true.",
    )
    actions: list[ActionRuleModel] = Field(
        default_factory=list, description="Actions the policy allows, each with its mode."
    )
    production: bool = Field(
        False,
        description="Mark the resources the policy selects as production: no action runs on "
        "them without approvals, at least policy.production_min_approvals.",
    )
    critical: bool = Field(
        False,
        description="Mark the resources the policy selects as critical: no action runs on them "
        "in auto mode, and namespaces are never paused.",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not re.match(POLICY_NAME_PATTERN, value):
            raise ValueError(
                f"invalid policy name {value!r}; use 1 to 100 lowercase letters, digits, '.', '_' "
                "and '-', starting and ending with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _does_something(self) -> PolicyModel:
        if not self.actions and not self.production and not self.critical:
            raise ValueError(
                "the policy has no effect; list actions, or set production or critical to true"
            )
        return self


class PolicyFileModel(_Strict):
    """A policy file."""

    version: Literal[1] = Field(1, description="Format version; 1.")
    policies: list[PolicyModel] = Field(min_length=1, description="The policies of this file.")
