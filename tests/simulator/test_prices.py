from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from costwarden.errors import InputError, PriceNotFoundError
from costwarden.sources.prices import INSTANCE_SHAPES, PriceCatalog


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.packaged()


def test_aws_price_from_packaged_csv(catalog: PriceCatalog) -> None:
    price = catalog.instance_price("aws", "us-east-1", "m5.xlarge")

    assert price.usd_per_hour == Decimal("0.192")
    assert price.currency == "USD"
    assert price.published == date(2026, 7, 20)
    assert "karpenter-provider-aws" in price.source


def test_cloud_types_map_to_providers(catalog: PriceCatalog) -> None:
    assert catalog.hourly_price("eks", "us-east-1", "g5.2xlarge") == Decimal("1.212")
    assert catalog.hourly_price("aks", "eastus", "Standard_D8s_v5") == Decimal("0.384")
    assert catalog.hourly_price("azure", "westeurope", "Standard_D8s_v5") == Decimal("0.46")


def test_gcp_price_is_vcpu_and_memory_units(catalog: PriceCatalog) -> None:
    on_demand = catalog.hourly_price("gke", "us-central1", "n2-standard-4")
    spot = catalog.hourly_price("gcp", "us-central1", "n2-standard-4", "spot")

    assert on_demand == 4 * Decimal("0.031611") + 16 * Decimal("0.004237")
    assert spot == 4 * Decimal("0.006655") + 16 * Decimal("0.000892")
    assert "opencost" in catalog.instance_price("gcp", "us-central1", "n2-standard-4").source


def test_storage_price_per_gib_hour(catalog: PriceCatalog) -> None:
    for cloud, region in [("aws", "us-east-1"), ("azure", "uksouth"), ("gcp", "us-central1")]:
        assert catalog.storage_price_per_gib_hour(cloud, region) == Decimal("0.00005479452")


def test_unknown_instance_type_raises(catalog: PriceCatalog) -> None:
    with pytest.raises(PriceNotFoundError, match="m5.huge") as caught:
        catalog.hourly_price("aws", "us-east-1", "m5.huge")

    assert isinstance(caught.value, InputError)
    assert caught.value.instance_type == "m5.huge"
    assert caught.value.region == "us-east-1"


@pytest.mark.parametrize(
    ("cloud", "region", "instance_type", "capacity", "message"),
    [
        ("aws", "eu-west-1", "m5.large", "on-demand", "covers us-east-1"),
        ("gcp", "europe-west1", "n2-standard-4", "on-demand", "covers us-central1"),
        ("oracle", "any", "VM.Standard3", "on-demand", "no prices for cloud 'oracle'"),
        ("aws", "us-east-1", "m5.large", "spot", "on-demand prices only"),
        ("gcp", "us-central1", "n2-standard-128", "on-demand", "no machine shape"),
        ("azure", "eastus", "Standard_M128bds_1_v4", "on-demand", "Standard_M128bds_1_v4"),
    ],
)
def test_lookup_errors_name_the_value(
    catalog: PriceCatalog,
    cloud: str,
    region: str,
    instance_type: str,
    capacity: str,
    message: str,
) -> None:
    with pytest.raises(PriceNotFoundError, match=message):
        catalog.hourly_price(cloud, region, instance_type, capacity)  # type: ignore[arg-type]


def test_every_shaped_type_has_a_price(catalog: PriceCatalog) -> None:
    regions = {"aws": "us-east-1", "azure": "eastus", "gcp": "us-central1"}
    for provider, shapes in INSTANCE_SHAPES.items():
        for instance_type in shapes:
            assert catalog.hourly_price(provider, regions[provider], instance_type) > 0


def test_azure_regions_listed(catalog: PriceCatalog) -> None:
    assert len(catalog.regions("azure")) == 8
    assert "Standard_D4s_v5" in catalog.instance_types("aks", "southeastasia")
