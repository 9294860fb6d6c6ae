"""Storage class: move claims to a cheaper class with the same performance, such as gp2 to gp3."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.domain.usage import VolumeUsage
from costwarden.recommend.idle import disk_price
from costwarden.recommend.inputs import RecommendInput
from costwarden.recommend.pricing import GIB
from costwarden.recommend.registry import RECOMMENDERS


class StorageClassSettings(BaseModel):
    """Options of the storage class recommender."""

    model_config = ConfigDict(extra="forbid")

    conversions: dict[str, str] = Field(
        default_factory=lambda: {"gp2": "gp3"},
        description="Storage class to propose for each current storage class.",
    )
    price_ratios: dict[str, float] = Field(
        # AWS EBS list prices in us-east-1: gp2 0.10 and gp3 0.08 USD per GB-month.
        default_factory=lambda: {"gp2": 0.8},
        description="Price of the proposed class as a fraction of the current class's price, "
        "per current storage class.",
    )

    @model_validator(mode="after")
    def _ratio_per_conversion(self) -> StorageClassSettings:
        missing = sorted(set(self.conversions) - set(self.price_ratios))
        if missing:
            raise ValueError(f"price_ratios has no entry for storage classes {missing}")
        bad = {name: ratio for name, ratio in self.price_ratios.items() if not 0 < ratio <= 1}
        if bad:
            raise ValueError(f"price_ratios must be above 0 and at most 1, got {bad}")
        return self


@RECOMMENDERS.register("storage-class", StorageClassSettings)
class StorageClassRecommender:
    """Move claims from an expensive storage class to its cheaper equivalent.

    Method: every claim whose storage class is a key of ``conversions`` gets that class's
    target. Savings are the claim's size times the disk price per GiB-hour times one minus the
    ``price_ratios`` entry (0.8 for gp2 to gp3, from AWS list prices). gp3's baseline of 3,000
    IOPS and 125 MiB/s matches or beats gp2 below 1 TiB.

    TODO: premium to standard classes on Azure need IOPS metrics, which the Prometheus
    source does not read yet.
    """

    name: str

    def __init__(self, settings: StorageClassSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        return [
            self._recommendation(bundle, volume)
            for volume in bundle.volumes.items
            if volume.storage_class in self.settings.conversions
        ]

    def _recommendation(self, bundle: RecommendInput, volume: VolumeUsage) -> Recommendation:
        key = volume.volume
        current = volume.storage_class or ""
        target = self.settings.conversions[current]
        size_bytes = volume.capacity_bytes or volume.requested_bytes or 0.0
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
            manual_change=f"Modify the volume to {target} in place (AWS EBS Elastic Volumes) or "
            "migrate the data to a new claim; Palette's API does not manage claims",
            evidence={"size_bytes": size_bytes, "queries": list(bundle.volumes.queries)},
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
