"""List prices of cloud instances and disks, read from price files packaged with costwarden.

AWS (us-east-1, Linux) and Azure (8 regions) on-demand prices come from the fallback price lists
built into the Karpenter providers for AWS and Azure. There is no per-type GCP list in the
package, so a GCP instance costs its vCPU count times OpenCost's default price per vCPU-hour plus
its memory times the default price per GiB-hour. OpenCost describes those defaults as based on
GCP us-central1, so GCP prices are offered for that region only. Disks cost OpenCost's default
price per GiB-hour on every cloud. ``data/prices/SOURCE.md`` names the upstream commit and
licence of each file.

Spot prices are the on-demand price times one minus a Spot discount per provider. The default
discount is OpenCost's: one minus the ratio of its default Spot and on-demand vCPU prices, which
is about 0.79 on AWS and GCP and 0.80 on Azure. These are typical figures, not quotes, because
real Spot prices change by zone and hour. ``with_spot_discounts`` replaces them with configured
ones, and ``with_instance_prices`` adds prices from another source, such as Palette's rate API,
that win over the packaged lists.

All prices are in US dollars. Palette cloud types map to their provider: ``eks`` is priced as
``aws``, ``aks`` as ``azure`` and ``gke`` as ``gcp``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

from costwarden.errors import PriceNotFoundError

logger = logging.getLogger(__name__)

CapacityType = Literal["on-demand", "spot"]
Provider = Literal["aws", "azure", "gcp"]

CURRENCY = "USD"
PROVIDERS: tuple[Provider, ...] = ("aws", "azure", "gcp")
CLOUD_TYPE_PROVIDERS: dict[str, Provider] = {
    "aws": "aws",
    "eks": "aws",
    "azure": "azure",
    "aks": "azure",
    "gcp": "gcp",
    "gke": "gcp",
}
GCP_REGION = "us-central1"
_EXAMPLE_TYPES = {"aws": "m5.xlarge", "azure": "Standard_D4s_v5", "gcp": "n2-standard-4"}


@dataclass(frozen=True, slots=True)
class PriceSource:
    """Origin of a packaged price file: its upstream source and publication date."""

    file: str
    upstream: str
    published: date


INSTANCE_PRICE_SOURCES: dict[Provider, PriceSource] = {
    "aws": PriceSource(
        "aws_ondemand_linux_hourly_karpenter.csv",
        "aws/karpenter-provider-aws@1d927085 pkg/providers/pricing/zz_generated.pricing_aws.go",
        date(2026, 7, 20),
    ),
    "azure": PriceSource(
        "azure_ondemand_hourly_karpenter_subset.csv",
        "Azure/karpenter-provider-azure@352646f5 pkg/providers/pricing/zz_generated.pricing.go",
        date(2026, 6, 18),
    ),
}

UNIT_PRICE_SOURCES: dict[Provider, PriceSource] = {
    provider: PriceSource(
        f"default_prices_{provider}.json",
        f"opencost/opencost@5f653330 configs/{provider}.json",
        date(2024, 10, 24),
    )
    for provider in PROVIDERS
}


@dataclass(frozen=True, slots=True)
class MachineShape:
    """The vCPUs, memory and GPUs of one instance type."""

    vcpus: int
    memory_gib: float
    gpus: int = 0


# Shapes of the instance types the simulator's fleet uses, as published on the providers' instance
# type pages (AWS EC2 instance types, Azure VM sizes, Google Compute Engine machine families).
# GCP prices are computed from these shapes; for AWS and Azure they only describe capacity.
INSTANCE_SHAPES: dict[Provider, dict[str, MachineShape]] = {
    "aws": {
        "t3.medium": MachineShape(2, 4),
        "t3.large": MachineShape(2, 8),
        "m5.large": MachineShape(2, 8),
        "m5.xlarge": MachineShape(4, 16),
        "m5.2xlarge": MachineShape(8, 32),
        "m5.4xlarge": MachineShape(16, 64),
        "m6i.xlarge": MachineShape(4, 16),
        "m6i.2xlarge": MachineShape(8, 32),
        "c5.xlarge": MachineShape(4, 8),
        "c5.2xlarge": MachineShape(8, 16),
        "r5.xlarge": MachineShape(4, 32),
        "r5.2xlarge": MachineShape(8, 64),
        "g4dn.xlarge": MachineShape(4, 16, 1),
        "g5.xlarge": MachineShape(4, 16, 1),
        "g5.2xlarge": MachineShape(8, 32, 1),
        "p3.2xlarge": MachineShape(8, 61, 1),
    },
    "azure": {
        "Standard_B2ms": MachineShape(2, 8),
        "Standard_D2s_v5": MachineShape(2, 8),
        "Standard_D4s_v5": MachineShape(4, 16),
        "Standard_D8s_v5": MachineShape(8, 32),
        "Standard_D16s_v5": MachineShape(16, 64),
        "Standard_E4s_v5": MachineShape(4, 32),
        "Standard_E8s_v5": MachineShape(8, 64),
        "Standard_F4s_v2": MachineShape(4, 8),
        "Standard_F8s_v2": MachineShape(8, 16),
        "Standard_NC4as_T4_v3": MachineShape(4, 28, 1),
        "Standard_NC8as_T4_v3": MachineShape(8, 56, 1),
        "Standard_NC6s_v3": MachineShape(6, 112, 1),
    },
    "gcp": {
        "e2-standard-2": MachineShape(2, 8),
        "e2-standard-4": MachineShape(4, 16),
        "e2-standard-8": MachineShape(8, 32),
        "n2-standard-2": MachineShape(2, 8),
        "n2-standard-4": MachineShape(4, 16),
        "n2-standard-8": MachineShape(8, 32),
        "n2-standard-16": MachineShape(16, 64),
        "n2-highmem-4": MachineShape(4, 32),
        "n2-highmem-8": MachineShape(8, 64),
        "n2-highcpu-8": MachineShape(8, 8),
        "c2-standard-8": MachineShape(8, 32),
    },
}


@dataclass(frozen=True, slots=True)
class InstancePrice:
    """The hourly list price of one instance type in one region."""

    provider: Provider
    region: str
    instance_type: str
    capacity_type: CapacityType
    usd_per_hour: Decimal
    source: str
    published: date
    currency: str = CURRENCY


@dataclass(frozen=True, slots=True)
class StoragePrice:
    """The list price of one GiB of disk for one hour in one region."""

    provider: Provider
    region: str
    usd_per_gib_hour: Decimal
    source: str
    published: date
    currency: str = CURRENCY


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """OpenCost's default unit prices for one provider."""

    cpu_hour: Decimal
    spot_cpu_hour: Decimal
    ram_gib_hour: Decimal
    spot_ram_gib_hour: Decimal
    storage_gib_hour: Decimal


@dataclass(frozen=True, slots=True)
class SpotDiscount:
    """The fraction of the on-demand price that Spot capacity saves on one provider.

    A ``discount`` of 0.7 means a Spot instance costs 30 % of its on-demand price.
    """

    provider: Provider
    discount: Decimal
    source: str
    published: date


PriceKey = tuple[Provider, str, str, CapacityType]
"""Provider, region, instance type and capacity type of one instance price."""


def provider_of(cloud: str) -> Provider:
    """Return the provider that prices a Palette cloud type, such as ``aws`` for ``eks``."""
    provider = CLOUD_TYPE_PROVIDERS.get(cloud.lower())
    if provider is None:
        known = ", ".join(sorted(CLOUD_TYPE_PROVIDERS))
        raise PriceNotFoundError(
            f"no prices for cloud {cloud!r}; the price catalogue knows {known}", cloud=cloud
        )
    return provider


class PriceCatalog:
    """Instance and disk list prices by provider, region and instance type.

    ``PriceCatalog.packaged()`` loads the files shipped in ``costwarden/data/prices`` once per
    process. Every lookup raises ``PriceNotFoundError`` with the valid choices when a cloud,
    region, instance type or capacity type has no price.
    """

    def __init__(
        self,
        instance_prices: dict[Provider, dict[str, dict[str, Decimal]]],
        unit_prices: dict[Provider, UnitPrices],
        *,
        spot_discounts: Mapping[Provider, SpotDiscount] | None = None,
        overrides: Mapping[PriceKey, InstancePrice] | None = None,
        override_shapes: Mapping[tuple[Provider, str], MachineShape] | None = None,
    ) -> None:
        self._instance_prices = instance_prices
        self._unit_prices = unit_prices
        self._spot_discounts = dict(spot_discounts or {})
        self._overrides = dict(overrides or {})
        self._override_shapes = dict(override_shapes or {})

    def with_spot_discounts(self, discounts: Iterable[SpotDiscount]) -> PriceCatalog:
        """Return a copy of the catalogue that uses these Spot discounts for their providers."""
        merged = {**self._spot_discounts, **{item.provider: item for item in discounts}}
        return self._copy(spot_discounts=merged)

    def with_instance_prices(
        self,
        prices: Iterable[InstancePrice],
        shapes: Mapping[tuple[Provider, str], MachineShape] | None = None,
    ) -> PriceCatalog:
        """Return a copy of the catalogue in which these prices, and shapes, win over the lists.

        ``shapes`` maps (provider, instance type) to the shape reported with the prices.
        """
        overrides = dict(self._overrides)
        for price in prices:
            key = (price.provider, price.region, price.instance_type, price.capacity_type)
            overrides[key] = price
        return self._copy(
            overrides=overrides, override_shapes={**self._override_shapes, **(shapes or {})}
        )

    def _copy(
        self,
        *,
        spot_discounts: Mapping[Provider, SpotDiscount] | None = None,
        overrides: Mapping[PriceKey, InstancePrice] | None = None,
        override_shapes: Mapping[tuple[Provider, str], MachineShape] | None = None,
    ) -> PriceCatalog:
        return PriceCatalog(
            self._instance_prices,
            self._unit_prices,
            spot_discounts=self._spot_discounts if spot_discounts is None else spot_discounts,
            overrides=self._overrides if overrides is None else overrides,
            override_shapes=self._override_shapes if override_shapes is None else override_shapes,
        )

    @classmethod
    def packaged(cls) -> PriceCatalog:
        """Return the catalogue of the packaged price files, loaded on first use."""
        return _load_packaged()

    def regions(self, cloud: str) -> list[str]:
        """Return the regions with instance prices for a cloud, sorted."""
        provider = provider_of(cloud)
        if provider == "gcp":
            return [GCP_REGION]
        return sorted(self._instance_prices[provider])

    def instance_types(self, cloud: str, region: str) -> list[str]:
        """Return the instance types with a price in one region, sorted."""
        provider = provider_of(cloud)
        self._check_region(provider, region)
        if provider == "gcp":
            return sorted(INSTANCE_SHAPES["gcp"])
        return sorted(self._instance_prices[provider][region])

    def instance_price(
        self,
        cloud: str,
        region: str,
        instance_type: str,
        capacity_type: CapacityType = "on-demand",
    ) -> InstancePrice:
        """Look up the hourly price of an instance type, with the source and date of the price.

        A price added with ``with_instance_prices`` wins over the packaged lists.
        """
        provider = provider_of(cloud)
        override = self._overrides.get((provider, region, instance_type, capacity_type))
        if override is not None:
            return override
        self._check_region(provider, region)

        if provider == "gcp":
            amount = self._gcp_price(region, instance_type, capacity_type)
            source = UNIT_PRICE_SOURCES["gcp"]
        else:
            amount = self._listed_price(provider, region, instance_type, capacity_type)
            source = INSTANCE_PRICE_SOURCES[provider]

        return InstancePrice(
            provider=provider,
            region=region,
            instance_type=instance_type,
            capacity_type=capacity_type,
            usd_per_hour=amount,
            source=source.upstream,
            published=source.published,
        )

    def spot_discount(self, cloud: str) -> SpotDiscount:
        """Return the configured Spot discount of a cloud's provider, else OpenCost's default."""
        provider = provider_of(cloud)
        configured = self._spot_discounts.get(provider)
        if configured is not None:
            return configured
        units = self._unit_prices[provider]
        source = UNIT_PRICE_SOURCES[provider]
        discount = Decimal(1) - units.spot_cpu_hour / units.cpu_hour
        return SpotDiscount(
            provider=provider,
            discount=discount.quantize(Decimal("0.0001")),
            source=f"{source.upstream}: 1 - spotCPU / CPU, a typical figure and not a quote",
            published=source.published,
        )

    def spot_price(self, cloud: str, region: str, instance_type: str) -> InstancePrice:
        """Look up the hourly Spot price of an instance type.

        A Spot price added with ``with_instance_prices`` wins. Otherwise the price is the
        on-demand price times one minus ``spot_discount``, and its date is the older of the two.
        """
        provider = provider_of(cloud)
        override = self._overrides.get((provider, region, instance_type, "spot"))
        if override is not None:
            return override

        on_demand = self.instance_price(cloud, region, instance_type)
        discount = self.spot_discount(cloud)
        return InstancePrice(
            provider=provider,
            region=region,
            instance_type=instance_type,
            capacity_type="spot",
            usd_per_hour=on_demand.usd_per_hour * (Decimal(1) - discount.discount),
            source=f"{on_demand.source} x (1 - {discount.discount} Spot discount from "
            f"{discount.source})",
            published=min(on_demand.published, discount.published),
            currency=on_demand.currency,
        )

    def hourly_price(
        self,
        cloud: str,
        region: str,
        instance_type: str,
        capacity_type: CapacityType = "on-demand",
    ) -> Decimal:
        """Return the price of one instance for one hour, in US dollars."""
        return self.instance_price(cloud, region, instance_type, capacity_type).usd_per_hour

    def storage_price(self, cloud: str, region: str) -> StoragePrice:
        """Look up the price of one GiB of disk for one hour, with its source and date."""
        provider = provider_of(cloud)
        self._check_region(provider, region)
        source = UNIT_PRICE_SOURCES[provider]
        return StoragePrice(
            provider=provider,
            region=region,
            usd_per_gib_hour=self._unit_prices[provider].storage_gib_hour,
            source=source.upstream,
            published=source.published,
        )

    def storage_price_per_gib_hour(self, cloud: str, region: str) -> Decimal:
        """Return the price of one GiB of disk for one hour, in US dollars."""
        return self.storage_price(cloud, region).usd_per_gib_hour

    def unit_prices(self, cloud: str) -> UnitPrices:
        """Return OpenCost's default per-vCPU, per-GiB and disk prices for a cloud's provider."""
        return self._unit_prices[provider_of(cloud)]

    def shape(self, cloud: str, instance_type: str) -> MachineShape:
        """Return the vCPUs, memory and GPUs of an instance type from the built-in shape table."""
        provider = provider_of(cloud)
        shape = self._override_shapes.get((provider, instance_type))
        shape = shape or INSTANCE_SHAPES[provider].get(instance_type)
        if shape is None:
            known = ", ".join(sorted(INSTANCE_SHAPES[provider]))
            raise PriceNotFoundError(
                f"no machine shape for {provider} instance type {instance_type!r}; "
                f"known types: {known}",
                cloud=cloud,
                instance_type=instance_type,
            )
        return shape

    def _check_region(self, provider: Provider, region: str) -> None:
        known = [GCP_REGION] if provider == "gcp" else sorted(self._instance_prices[provider])
        if region in known:
            return
        raise PriceNotFoundError(
            f"no {provider} prices for region {region!r}; the catalogue covers {', '.join(known)}",
            cloud=provider,
            region=region,
        )

    def _listed_price(
        self, provider: Provider, region: str, instance_type: str, capacity_type: CapacityType
    ) -> Decimal:
        if capacity_type != "on-demand":
            raise PriceNotFoundError(
                f"no {capacity_type} prices for {provider}: the packaged {provider} list has "
                "on-demand prices only",
                cloud=provider,
                region=region,
                instance_type=instance_type,
                capacity_type=capacity_type,
            )

        price = self._instance_prices[provider][region].get(instance_type)
        if price is None:
            raise PriceNotFoundError(
                f"no {provider} price for instance type {instance_type!r} in {region}; check "
                f"the spelling (for example {_EXAMPLE_TYPES[provider]}) or list the priced "
                "types with PriceCatalog.instance_types()",
                cloud=provider,
                region=region,
                instance_type=instance_type,
                capacity_type=capacity_type,
            )
        return price

    def _gcp_price(self, region: str, instance_type: str, capacity_type: CapacityType) -> Decimal:
        shape = self.shape("gcp", instance_type)
        units = self._unit_prices["gcp"]
        spot = capacity_type == "spot"
        cpu = units.spot_cpu_hour if spot else units.cpu_hour
        ram = units.spot_ram_gib_hour if spot else units.ram_gib_hour
        return cpu * shape.vcpus + ram * Decimal(str(shape.memory_gib))


@cache
def _load_packaged() -> PriceCatalog:
    folder = resources.files("costwarden").joinpath("data", "prices")

    instance_prices: dict[Provider, dict[str, dict[str, Decimal]]] = {}
    for provider, source in INSTANCE_PRICE_SOURCES.items():
        text = folder.joinpath(source.file).read_text(encoding="utf-8")
        instance_prices[provider] = _parse_price_csv(source.file, text)

    unit_prices: dict[Provider, UnitPrices] = {}
    for provider, source in UNIT_PRICE_SOURCES.items():
        text = folder.joinpath(source.file).read_text(encoding="utf-8")
        unit_prices[provider] = _parse_unit_prices(source.file, text)

    return PriceCatalog(instance_prices, unit_prices)


def _parse_price_csv(name: str, text: str) -> dict[str, dict[str, Decimal]]:
    """Read ``provider,region,<type>,<usd per hour>`` rows into region -> type -> price.

    A price of 0 marks a type without a list price upstream; such rows are left out.
    """
    reader = csv.reader(io.StringIO(text))
    next(reader)

    prices: dict[str, dict[str, Decimal]] = {}
    skipped = 0
    for row in _checked_rows(name, reader):
        _, region, instance_type, amount = row
        price = Decimal(amount)
        if price <= 0:
            skipped += 1
            continue
        prices.setdefault(region, {})[instance_type] = price

    logger.debug("loaded %s: %d regions, %d rows without a price", name, len(prices), skipped)
    return prices


def _checked_rows(name: str, rows: Iterable[list[str]]) -> Iterable[list[str]]:
    for line, row in enumerate(rows, start=2):
        if len(row) != 4:
            raise ValueError(f"packaged price file {name}, line {line}: expected 4 columns: {row}")
        yield row


def _parse_unit_prices(name: str, text: str) -> UnitPrices:
    data = json.loads(text)
    try:
        return UnitPrices(
            cpu_hour=Decimal(data["CPU"]),
            spot_cpu_hour=Decimal(data["spotCPU"]),
            ram_gib_hour=Decimal(data["RAM"]),
            spot_ram_gib_hour=Decimal(data["spotRAM"]),
            storage_gib_hour=Decimal(data["storage"]),
        )
    except KeyError as exc:
        raise ValueError(f"packaged price file {name} has no {exc.args[0]} field") from exc
