"""Storage class: move claims to a cheaper class with the same performance, such as gp2 to gp3."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.domain.usage import VolumeUsage
from costwarden.recommend.idle import disk_price
from costwarden.recommend.inputs import RecommendInput
from costwarden.recommend.pricing import GIB
from costwarden.recommend.registry import RECOMMENDERS

logger = logging.getLogger(__name__)


class StorageClassSettings(BaseModel):
    """Options of the storage class recommender."""

    model_config = ConfigDict(extra="forbid")

    conversions: dict[str, str] = Field(
        default_factory=lambda: {"gp2": "gp3", "managed-csi-premium": "managed-csi"},
        description="Storage class to propose for each current storage class.",
    )
    price_ratios: dict[str, float] = Field(
        # AWS EBS list prices in us-east-1: gp2 0.10 and gp3 0.08 USD per GB-month.
        # NOTE: the Azure ratio is an estimate of a Standard SSD disk's price against a Premium
        # SSD disk of the same size. The real ratio differs by size and region.
        default_factory=lambda: {"gp2": 0.8, "managed-csi-premium": 0.5},
        description="Price of the proposed class as a fraction of the current class's price, "
        "per current storage class.",
    )
    iops_limits: dict[str, float] = Field(
        # AKS's managed-csi class uses Azure Standard SSD, which offers 500 IOPS on disks up to
        # 1 TiB (E30).
        default_factory=lambda: {"managed-csi": 500},
        description="Largest peak IOPS a claim may have to move to a proposed storage class, per "
        "proposed class; classes not listed are proposed without an IOPS check.",
    )

    @model_validator(mode="after")
    def _ratio_per_conversion(self) -> StorageClassSettings:
        missing = sorted(set(self.conversions) - set(self.price_ratios))
        if missing:
            raise ValueError(f"price_ratios has no entry for storage classes {missing}")
        bad = {name: ratio for name, ratio in self.price_ratios.items() if not 0 < ratio <= 1}
        if bad:
            raise ValueError(f"price_ratios must be above 0 and at most 1, got {bad}")
        negative = {name: limit for name, limit in self.iops_limits.items() if limit < 0}
        if negative:
            raise ValueError(f"iops_limits must not be negative, got {negative}")
        return self


@RECOMMENDERS.register("storage-class", StorageClassSettings)
class StorageClassRecommender:
    """Move claims from an expensive storage class to its cheaper equivalent.

    Method: every claim whose storage class is a key of ``conversions`` gets that class's
    target. Savings are the claim's size times the disk price per GiB-hour times one minus the
    ``price_ratios`` entry (0.8 for gp2 to gp3, from AWS list prices). gp3's baseline of 3,000
    IOPS and 125 MiB/s matches or beats gp2 below 1 TiB, so gp2 claims need no IOPS check.

    A proposed class listed in ``iops_limits`` (Azure Standard SSD, 500 IOPS) also needs the
    claim's peak IOPS in the window at or below the limit. No standard metric maps a claim to
    its block device, so the peak is bounded from above: the largest peak read plus write IOPS
    (node-exporter's ``node_disk_reads_completed_total`` and ``_writes_completed_total``) of
    any device on any node that mounted the claim. A claim no pod mounted did no I/O. A mounted
    claim without disk metrics is not proposed.
    """

    name: str

    def __init__(self, settings: StorageClassSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        found = []
        for volume in bundle.volumes.items:
            if volume.storage_class not in self.settings.conversions:
                continue
            iops = self._iops_evidence(bundle, volume)
            if iops is not None:
                found.append(self._recommendation(bundle, volume, iops))
        return found

    def _iops_evidence(self, bundle: RecommendInput, volume: VolumeUsage) -> dict[str, Any] | None:
        """Return the IOPS check's figures, {} without a check, None when the claim fails it."""
        target = self.settings.conversions[volume.storage_class or ""]
        limit = self.settings.iops_limits.get(target)
        if limit is None:
            return {}
        if not volume.mounted:
            return {"peak_iops_bound": 0.0, "iops_limit": limit, "iops_source": "not mounted"}

        bound = bundle.claim_iops.items.get(volume.volume)
        if bound is None:
            key = volume.volume
            logger.info("no disk IOPS for claim %s/%s/%s; move to %s not proposed",
                        key.cluster, key.namespace, key.claim, target)  # fmt: skip
            return None
        if bound.peak_iops > limit:
            return None
        return {
            "peak_iops_bound": round(bound.peak_iops, 3),
            "iops_limit": limit,
            "iops_source": f"busiest device {bound.busiest_device} of nodes "
            f"{', '.join(bound.nodes)}",
        }

    def _recommendation(
        self, bundle: RecommendInput, volume: VolumeUsage, iops: dict[str, Any]
    ) -> Recommendation:
        key = volume.volume
        current = volume.storage_class or ""
        target = self.settings.conversions[current]
        size_bytes = volume.capacity_bytes or volume.requested_bytes or 0.0
        queries = list(bundle.volumes.queries)
        if iops:
            queries += list(bundle.claim_iops.queries)
        return Recommendation(
            kind=self.name,
            title=f"Move claim {key.namespace}/{key.claim} from {current} to {target}",
            target=Target(key.cluster, "PersistentVolumeClaim", key.claim, key.namespace),
            before={"storage_class": current},
            after={"storage_class": target},
            savings=self._savings(bundle, key.cluster, size_bytes, current),
            confidence="high",
            risk="low",
            risk_note=f"{target} must offer the IOPS and throughput the volume uses",
            effort="medium",
            reversible=True,
            resources=frozenset({f"volume:{key.cluster}/{key.namespace}/{key.claim}"}),
            manual_change=f"Modify the volume to {target} in place (AWS EBS Elastic Volumes, or "
            "an Azure disk SKU change while detached) or migrate the data to a new claim; "
            "Palette's API does not manage claims",
            evidence={"size_bytes": size_bytes, **iops, "queries": queries},
        )

    def _savings(
        self, bundle: RecommendInput, cluster: str, size_bytes: float, current: str
    ) -> Savings:
        price = disk_price(bundle, cluster)
        if price is None:
            return Savings(Decimal(0), "USD", "not estimated: no disk price for the cluster")
        share = Decimal(1) - Decimal(str(self.settings.price_ratios[current]))
        gib = Decimal(str(round(size_bytes / GIB, 6)))
        method = f"{gib} GiB x {price.amount} per GiB-hour x {share} cheaper"
        return Savings.from_hourly(gib * price.amount * share, price.currency, method, (price,))
