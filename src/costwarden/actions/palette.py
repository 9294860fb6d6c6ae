"""Palette actions: resize a machine pool, change its instance or capacity type, tag a cluster.

Pool actions read the cluster (``GET /v1/spectroclusters/{uid}``) for its cloud type and cloud
config uid, then the cloud config (``GET /v1/cloudconfigs/{cloud}/{configUid}``) for the pool,
and write the whole pool back with ``PUT /v1/cloudconfigs/{cloud}/{configUid}/machinePools/
{name}``, because that PUT replaces the pool. ``palette.tag_cluster`` sends the cluster's full
label map with ``PATCH /v1/spectroclusters/{uid}/metadata``. Palette stores tags as labels, and
a tag without a value as the label value ``spectro__tag``.

Each action compares the state it reads with ``ActionRequest.expected`` and raises
``StaleStateError`` naming every field that differs. Apply and rollback require ``expected`` to
contain every field they change; a dry run checks only the fields that are present. An approval
request pins the whole state its dry run read (``expected_state``), so a change to any pool
field or cluster label since the approval stops the apply. Rollback checks that the resource is
still as apply left it before it restores the state read before apply.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from costwarden.actions.context import ActionContext
from costwarden.actions.registry import ACTIONS, Action, ActionOutcome, ActionParams
from costwarden.domain.governance import ActionRequest
from costwarden.errors import ActionError, CostwardenError, PaletteApiError, StaleStateError
from costwarden.sources.prices import CLOUD_TYPE_PROVIDERS

logger = logging.getLogger(__name__)

POOL_FIELDS = ("size", "min_size", "max_size", "instance_type", "capacity_type")
"""The fields of a machine pool's state that pool actions read, compare and change."""

KEY_ONLY_TAG = "spectro__tag"
"""Label value under which Palette stores a tag that has no value."""

POOL_CONFIG_KEYS = (
    "name",
    "labels",
    "size",
    "minSize",
    "maxSize",
    "isControlPlane",
    "useControlPlaneAsWorker",
    "taints",
    "additionalLabels",
    "additionalTags",
    "additionalAnnotations",
    "updateStrategy",
    "nodeRepaveInterval",
    "machinePoolProperties",
    "skipK8sUpgrade",
)
"""Fields of ``v1MachinePoolConfigEntity`` copied from the pool as read."""

CLOUD_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "aws": (
        "instanceType",
        "capacityType",
        "spotMarketOptions",
        "azs",
        "rootDeviceSize",
        "additionalSecurityGroups",
        "subnets",
    ),
    "azure": ("instanceType", "azs", "isSystemNodePool", "osDisk"),
    "gcp": ("instanceType", "azs", "rootDeviceSize", "subnet", "subnets"),
}
"""Fields of each provider's machine pool ``cloudConfig`` entity copied from the pool as read."""


class ResizePoolParams(ActionParams):
    """Parameters of ``palette.resize_pool``."""

    size: int = Field(ge=0, description="Node count of the pool.")
    min_size: int | None = Field(
        None, ge=0, description="Autoscaler minimum; unset keeps the current one."
    )
    max_size: int | None = Field(
        None, ge=0, description="Autoscaler maximum; unset keeps the current one."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ResizePoolParams:
        low = self.min_size if self.min_size is not None else 0
        if self.max_size is not None and not low <= self.size <= self.max_size:
            raise ValueError(
                f"size {self.size} must lie between min_size {low} and max_size {self.max_size}"
            )
        if self.min_size is not None and self.size < self.min_size:
            raise ValueError(f"size {self.size} must be at least min_size {self.min_size}")
        return self


class SetInstanceTypeParams(ActionParams):
    """Parameters of ``palette.set_instance_type``."""

    instance_type: str = Field(min_length=1, description="New instance type, such as m5.large.")

    @field_validator("instance_type")
    @classmethod
    def _no_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("instance_type must not be blank")
        return value.strip()


class SetCapacityTypeParams(ActionParams):
    """Parameters of ``palette.set_capacity_type``."""

    capacity_type: Literal["on-demand", "spot"] = Field(description="on-demand or spot.")


class TagClusterParams(ActionParams):
    """Parameters of ``palette.tag_cluster``."""

    tags: dict[str, str | None] = Field(
        min_length=1, description="Tags to set; a null value sets a tag without a value."
    )


@dataclass(frozen=True, slots=True)
class PoolTarget:
    """Where a pool lives and its JSON entry as Palette returned it."""

    cluster_uid: str
    cloud_type: str
    config_uid: str
    pool: dict[str, Any]

    @property
    def provider(self) -> str:
        return CLOUD_TYPE_PROVIDERS[self.cloud_type]

    @property
    def path(self) -> str:
        name = self.pool["name"]
        return f"/v1/cloudconfigs/{self.cloud_type}/{self.config_uid}/machinePools/{name}"

    def state(self) -> dict[str, Any]:
        """Return the pool's size, limits, instance type and capacity type."""
        pool = self.pool
        size = int(pool.get("size") or 0)
        return {
            "size": size,
            "min_size": int(pool["minSize"]) if pool.get("minSize") is not None else size,
            "max_size": int(pool["maxSize"]) if pool.get("maxSize") is not None else size,
            "instance_type": pool.get("instanceType") or "",
            "capacity_type": _capacity_type(self.provider, pool),
        }


def _capacity_type(provider: str, pool: Mapping[str, Any]) -> str:
    if provider == "aws":
        return str(pool.get("capacityType") or "on-demand")
    if provider == "azure":
        return "spot" if pool.get("spotVMOptions") is not None else "on-demand"
    return "on-demand"


def check_expected(
    expected: Mapping[str, Any], actual: Mapping[str, Any], *, what: str, required: tuple[str, ...]
) -> None:
    """Raise ``StaleStateError`` when a field of ``expected`` differs from ``actual``.

    ``required`` names fields that ``expected`` must contain; a missing one raises
    ``ActionError``, because without it the action cannot tell whether the state changed.
    """
    unknown = sorted(set(expected) - set(actual))
    if unknown:
        raise ActionError(
            f"{what}: expected state has unknown fields {unknown}; known fields: "
            f"{', '.join(sorted(actual))}"
        )
    missing = [name for name in required if name not in expected]
    if missing:
        raise ActionError(
            f"{what}: the request's expected state lacks {', '.join(missing)}, so the action "
            "cannot check that the resource is unchanged since the recommendation; record the "
            "state the recommendation was computed from in ActionRequest.expected"
        )
    differences = [
        f"{name} is {actual[name]!r} but the request expected {value!r}"
        for name, value in expected.items()
        if actual[name] != value
    ]
    if differences:
        raise StaleStateError(
            f"{what}: {'; '.join(differences)}. The resource changed since, so nothing was "
            "changed. Review the resource and make a new recommendation"
        )


POOL_ACTIONS = ("palette.resize_pool", "palette.set_instance_type", "palette.set_capacity_type")


def expected_state(action: str, before: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the expected state that pins every field a dry run of ``action`` read.

    ``before`` is the dry run's ``ActionOutcome.before``: for a pool action the size, limits,
    instance type and capacity type, and for ``palette.tag_cluster`` the cluster's whole
    label map (as ``cluster_labels``). Returns None for actions of other modules.
    """
    if action in POOL_ACTIONS:
        return {name: before[name] for name in POOL_FIELDS if name in before}
    if action == "palette.tag_cluster" and isinstance(before.get("labels"), Mapping):
        return {"cluster_labels": dict(before["labels"])}
    return None


def _require_scope(request: ActionRequest, kinds: tuple[str, ...], *, pool: bool) -> str:
    scope = request.scope
    if scope.kind not in kinds:
        raise ActionError(
            f"{request.action} applies to scopes of kind {' or '.join(kinds)}, not {scope.kind!r}"
        )
    if not scope.cluster_uid:
        raise ActionError(f"{request.action}: the scope has no cluster_uid")
    if pool and not scope.name:
        raise ActionError(f"{request.action}: the scope has no machine pool name")
    return scope.cluster_uid


def read_pool(context: ActionContext, request: ActionRequest) -> PoolTarget:
    """Read the cluster and its cloud config, and return the pool the request names."""
    cluster_uid = _require_scope(request, ("machine_pool",), pool=True)
    cluster = context.palette.get_json(f"/v1/spectroclusters/{cluster_uid}")
    spec = cluster.get("spec") or {}
    cloud_type = spec.get("cloudType") or ""
    config_uid = (spec.get("cloudConfigRef") or {}).get("uid") or ""
    if cloud_type not in CLOUD_TYPE_PROVIDERS or not config_uid:
        raise ActionError(
            f"cluster {cluster_uid} has cloud type {cloud_type!r} and cloud config "
            f"{config_uid!r}; pool actions support {', '.join(CLOUD_TYPE_PROVIDERS)} clusters"
        )

    config = context.palette.get_json(f"/v1/cloudconfigs/{cloud_type}/{config_uid}")
    pools = (config.get("spec") or {}).get("machinePoolConfig") or []
    for pool in pools:
        if pool.get("name") == request.scope.name:
            return PoolTarget(cluster_uid, cloud_type, config_uid, pool)
    names = ", ".join(str(pool.get("name")) for pool in pools) or "none"
    raise ActionError(
        f"machine pool {request.scope.name!r} not found in cluster {cluster_uid}; its pools: "
        f"{names}"
    )


def pool_entity(target: PoolTarget, state: Mapping[str, Any]) -> dict[str, Any]:
    """Build the PUT body: the pool as read, with ``state``'s size, limits and types."""
    pool = target.pool
    pool_config = {key: pool[key] for key in POOL_CONFIG_KEYS if pool.get(key) is not None}
    pool_config.setdefault("labels", [])
    pool_config.update(size=state["size"], minSize=state["min_size"], maxSize=state["max_size"])

    provider = target.provider
    cloud_config = {key: pool[key] for key in CLOUD_CONFIG_KEYS[provider] if key in pool}
    cloud_config["instanceType"] = state["instance_type"]
    if provider == "aws":
        cloud_config["capacityType"] = state["capacity_type"]
        if state["capacity_type"] != "spot":
            cloud_config.pop("spotMarketOptions", None)

    body: dict[str, Any] = {"cloudConfig": cloud_config, "poolConfig": pool_config}
    if target.cloud_type == "aks":
        body["managedPoolConfig"] = {
            "isSystemNodePool": bool(pool.get("isSystemNodePool")),
            "osType": pool.get("osType") or "Linux",
        }
    return body


class PoolAction(Action):
    """Shared steps of the machine pool actions; subclasses compute the new state."""

    scope_kinds: ClassVar[tuple[str, ...]] = ("machine_pool",)
    reversible: ClassVar[bool] = True

    def changes(
        self, target: PoolTarget, current: Mapping[str, Any], params: Any
    ) -> dict[str, Any]:
        """Return the pool fields to change and their new values."""
        raise NotImplementedError

    def dry_run(self, request: ActionRequest, context: ActionContext) -> ActionOutcome:
        target, current, desired = self._plan(request, context, required=False)
        return self._outcome(request, context, target, current, desired, applied=False)

    def apply(self, request: ActionRequest, context: ActionContext) -> ActionOutcome:
        target, current, desired = self._plan(request, context, required=True)
        if desired != current:
            _write_pool(context, request, target, desired)
            logger.info(
                "%s: PUT %s changed %s", request.action, target.path, _diff(current, desired)
            )
        return self._outcome(request, context, target, current, desired, applied=True)

    def rollback(
        self, request: ActionRequest, undo: Mapping[str, Any], context: ActionContext
    ) -> ActionOutcome:
        target = read_pool(context, request)
        current = target.state()
        left = dict(undo["after"])
        restore = {**current, **{key: undo["before"][key] for key in left}}
        # Check the whole pool as the apply left it, as an apply checks the whole pool it read.
        # Older runs have no "state" in their undo data, so only the changed fields are checked.
        pinned = dict(undo.get("state") or left)
        check_expected(pinned, current, what=_where(request), required=tuple(left))
        if restore != current:
            _write_pool(context, request, target, restore)
            logger.info(
                "%s rollback: PUT %s restored %s",
                request.action,
                target.path,
                _diff(current, restore),
            )
        return ActionOutcome(
            summary=f"restored {_describe(current, restore)} of pool {target.pool['name']}",
            before=current,
            after=restore,
            changed=restore != current,
        )

    def _plan(
        self, request: ActionRequest, context: ActionContext, *, required: bool
    ) -> tuple[PoolTarget, dict[str, Any], dict[str, Any]]:
        params = self.params_class.model_validate(dict(request.params))
        target = read_pool(context, request)
        current = target.state()
        changes = self.changes(target, current, params)
        needed = tuple(changes) if required else ()
        check_expected(request.expected, current, what=_where(request), required=needed)
        return target, current, {**current, **changes}

    def _outcome(
        self,
        request: ActionRequest,
        context: ActionContext,
        target: PoolTarget,
        current: dict[str, Any],
        desired: dict[str, Any],
        *,
        applied: bool,
    ) -> ActionOutcome:
        changed = {key for key in POOL_FIELDS if desired[key] != current[key]}
        verb = "changed" if applied else "would change"
        summary = (
            f"{verb} {_describe(current, desired)} of pool {target.pool['name']} in cluster "
            f"{target.cluster_uid}"
            if changed
            else f"pool {target.pool['name']} already has {_describe(desired, desired)}"
        )
        undo = {
            "before": {key: current[key] for key in sorted(changed)},
            "after": {key: desired[key] for key in sorted(changed)},
            "state": dict(desired),
        }
        return ActionOutcome(
            summary=summary,
            before=current,
            after=desired,
            undo=undo if applied else {},
            links=palette_links(context, target.cluster_uid),
            changed=bool(changed),
        )


def _write_pool(
    context: ActionContext, request: ActionRequest, target: PoolTarget, desired: dict[str, Any]
) -> None:
    """PUT the pool with ``desired``, and read the pool again when the PUT fails.

    A 5xx or a lost connection does not prove that nothing changed: a proxy or a timeout can
    fail a PUT that Palette applied. A pool that now has the desired state counts as written. A
    pool in any other state re-raises the error, with the pool's current state in the message.
    """
    try:
        context.palette.put_json(target.path, pool_entity(target, desired))
    except PaletteApiError as exc:
        if exc.status is not None and exc.status < 500:
            # Palette rejected the PUT (such as 422 for an unknown instance type).
            raise
        try:
            now = read_pool(context, request).state()
        except CostwardenError:
            raise exc from None
        if now == desired:
            logger.warning(
                "%s: PUT %s failed (%s), but the pool has the new state; counted as written",
                request.action, target.path, exc,
            )
            return
        state = ", ".join(f"{key} {value!r}" for key, value in now.items())
        raise PaletteApiError(
            f"{exc}; the pool now has {state}, so check it in Palette before a retry",
            method=exc.method, url=exc.url, status=exc.status, code=exc.code,
        ) from None


def _where(request: ActionRequest) -> str:
    scope = request.scope
    name = f" pool {scope.name}" if scope.name else ""
    return f"{request.action} on cluster {scope.cluster or scope.cluster_uid}{name}"


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{key} {before[key]!r} -> {after[key]!r}" for key in after if before.get(key) != after[key]
    )


def _changed(current: Mapping[str, Any], requested: Mapping[str, Any]) -> dict[str, Any]:
    """Return the requested values that differ from the current ones."""
    return {key: value for key, value in requested.items() if current[key] != value}


def _describe(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    diff = _diff(before, after)
    if diff:
        return diff
    return ", ".join(f"{key} {value!r}" for key, value in after.items() if key in ("size",))


def palette_links(context: ActionContext, cluster_uid: str) -> dict[str, str]:
    """Return the cluster's Palette console link, when the project uid is known."""
    palette = context.settings.palette
    project_uid = palette.project_uid
    if "{project_uid}" in palette.ui_url_template and not project_uid:
        return {}
    url = palette.ui_url_template.format(project_uid=project_uid or "", cluster_uid=cluster_uid)
    return {"palette": url}


@ACTIONS.register("palette.resize_pool")
class ResizePool(PoolAction):
    """Resize a Palette machine pool, and its autoscaler limits when it autoscales."""

    params_class = ResizePoolParams
    safe = True

    def changes(
        self, target: PoolTarget, current: Mapping[str, Any], params: Any
    ) -> dict[str, Any]:
        autoscales = current["min_size"] != current["max_size"]
        if autoscales:
            low = params.min_size if params.min_size is not None else current["min_size"]
            high = params.max_size if params.max_size is not None else current["max_size"]
        else:
            low = params.min_size if params.min_size is not None else params.size
            high = params.max_size if params.max_size is not None else params.size
        if not low <= params.size <= high:
            raise ActionError(
                f"size {params.size} lies outside the pool's autoscaler limits {low}..{high}; "
                "pass min_size and max_size to change them too"
            )
        return _changed(current, {"size": params.size, "min_size": low, "max_size": high})


@ACTIONS.register("palette.set_instance_type")
class SetInstanceType(PoolAction):
    """Change the instance type of a Palette machine pool; the nodes are replaced."""

    params_class = SetInstanceTypeParams

    def changes(
        self, target: PoolTarget, current: Mapping[str, Any], params: Any
    ) -> dict[str, Any]:
        return _changed(current, {"instance_type": params.instance_type})


@ACTIONS.register("palette.set_capacity_type")
class SetCapacityType(PoolAction):
    """Move a Palette machine pool between on-demand and spot capacity (AWS and EKS)."""

    params_class = SetCapacityTypeParams

    def changes(
        self, target: PoolTarget, current: Mapping[str, Any], params: Any
    ) -> dict[str, Any]:
        if target.provider != "aws":
            raise ActionError(
                f"{target.cloud_type} machine pools have no capacityType field in Palette's pool "
                "update; palette.set_capacity_type supports aws and eks clusters"
            )
        return _changed(current, {"capacity_type": params.capacity_type})


@ACTIONS.register("palette.tag_cluster")
class TagCluster(Action):
    """Set tags (Palette labels) on a cluster."""

    params_class = TagClusterParams
    scope_kinds = ("cluster",)
    safe = True
    reversible = True

    def dry_run(self, request: ActionRequest, context: ActionContext) -> ActionOutcome:
        return self._run(request, context, write=False)

    def apply(self, request: ActionRequest, context: ActionContext) -> ActionOutcome:
        return self._run(request, context, write=True)

    def rollback(
        self, request: ActionRequest, undo: Mapping[str, Any], context: ActionContext
    ) -> ActionOutcome:
        cluster_uid = _require_scope(request, self.scope_kinds, pool=False)
        labels = _labels(context, cluster_uid)
        left: dict[str, str | None] = dict(undo["after"])
        actual = {key: labels.get(key) for key in left}
        if actual != left:
            _raise_label_drift(request, left, actual)

        restored = dict(labels)
        for key, value in undo["before"].items():
            if value is None:
                restored.pop(key, None)
            else:
                restored[key] = value
        if restored != labels:
            context.palette.patch_json(
                f"/v1/spectroclusters/{cluster_uid}/metadata", {"metadata": {"labels": restored}}
            )
        return ActionOutcome(
            summary=f"restored tags {sorted(left)} of cluster {cluster_uid}",
            before={"labels": labels},
            after={"labels": restored},
            changed=restored != labels,
        )

    def _run(self, request: ActionRequest, context: ActionContext, *, write: bool) -> ActionOutcome:
        params = TagClusterParams.model_validate(dict(request.params))
        cluster_uid = _require_scope(request, self.scope_kinds, pool=False)
        labels = _labels(context, cluster_uid)
        requested = {
            key: KEY_ONLY_TAG if value is None else value for key, value in params.tags.items()
        }
        current = {key: labels.get(key) for key in requested}
        self._check(request, current, labels, required=write)

        after = {**labels, **requested}
        changed = after != labels
        if write and changed:
            context.palette.patch_json(
                f"/v1/spectroclusters/{cluster_uid}/metadata", {"metadata": {"labels": after}}
            )
            logger.info("%s: cluster %s labels set: %s", request.action, cluster_uid, requested)
        verb = ("set" if write else "would set") if changed else "already has"
        tags = ", ".join(f"{key}={value}" for key, value in sorted(requested.items()))
        return ActionOutcome(
            summary=f"{verb} tags {tags} on cluster {cluster_uid}",
            before={"labels": labels},
            after={"labels": after},
            undo={"before": current, "after": requested} if write else {},
            links=palette_links(context, cluster_uid),
            changed=changed,
        )

    def _check(
        self,
        request: ActionRequest,
        current: Mapping[str, str | None],
        labels: Mapping[str, str],
        *,
        required: bool,
    ) -> None:
        """Compare the cluster's labels with ``expected``.

        ``labels`` maps each tag being set to its expected value (null: absent);
        ``cluster_labels`` is the whole label map the approval saw, so any label added,
        removed or changed since counts as stale.
        """
        expected = dict(request.expected)
        unknown = sorted(set(expected) - {"labels", "cluster_labels"})
        if unknown:
            raise ActionError(
                f"{request.action}: expected state has unknown fields {unknown}; use labels: "
                "{key: value or null} for the tags being set, or cluster_labels: the cluster's "
                "whole label map"
            )
        if "labels" not in expected and "cluster_labels" not in expected:
            if required:
                raise ActionError(
                    f"{request.action}: the request's expected state lacks labels, so the action "
                    "cannot check that the tags are unchanged since the recommendation"
                )
            return
        if "labels" in expected:
            requested = {key: expected["labels"].get(key) for key in current}
            if requested != dict(current):
                _raise_label_drift(request, requested, dict(current))
        if "cluster_labels" in expected:
            whole: dict[str, str | None] = dict(expected["cluster_labels"])
            keys = set(whole) | set(labels)
            seen = {key: labels.get(key) for key in keys}
            wanted = {key: whole.get(key) for key in keys}
            if seen != wanted:
                _raise_label_drift(request, wanted, seen)


def _labels(context: ActionContext, cluster_uid: str) -> dict[str, str]:
    cluster = context.palette.get_json(f"/v1/spectroclusters/{cluster_uid}")
    return dict((cluster.get("metadata") or {}).get("labels") or {})


def _raise_label_drift(
    request: ActionRequest, expected: Mapping[str, str | None], actual: Mapping[str, str | None]
) -> None:
    drift = ", ".join(
        f"{key} is {actual.get(key)!r} (expected {value!r})"
        for key, value in sorted(expected.items())
        if actual.get(key) != value
    )
    raise StaleStateError(
        f"{_where(request)}: labels changed since the recommendation: {drift}; nothing was changed"
    )
