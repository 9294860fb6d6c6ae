import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from costwarden.sources.palette.client import format_time, parse_retry_after
from costwarden.sources.palette.models import (
    CloudCostSummary,
    ClusterSearchPage,
    ErrorBody,
    ResourceCostSummary,
    WorkloadNamespaces,
)

DAY = datetime(2026, 3, 14, tzinfo=UTC)
DAY_SECONDS = int(DAY.timestamp())


def _cloud_cost(timestamp: float) -> dict:
    return {
        "resources": [
            {
                "entity": {"uid": "c1", "name": "alpha", "kind": "spectrocluster"},
                "data": [{"timestamp": timestamp, "compute": 1.25, "storage": 0.5, "total": 1.75}],
                "total": {"compute": 1.25, "storage": 0.5, "total": 1.75},
            }
        ],
        "total": {"compute": 1.25, "storage": 0.5, "total": 1.75},
    }


def test_timestamp_seconds_and_milliseconds_agree():
    in_seconds = CloudCostSummary.model_validate(_cloud_cost(DAY_SECONDS))
    in_milliseconds = CloudCostSummary.model_validate(_cloud_cost(DAY_SECONDS * 1000))

    seconds_point = in_seconds.resources[0].data[0]
    milliseconds_point = in_milliseconds.resources[0].data[0]
    assert seconds_point.timestamp == DAY
    assert milliseconds_point.timestamp == DAY
    assert seconds_point.timestamp.tzinfo is UTC


def test_timestamp_rfc3339_string_becomes_utc():
    summary = CloudCostSummary.model_validate(_cloud_cost("2026-03-14T02:00:00+02:00"))

    assert summary.resources[0].data[0].timestamp == DAY


def test_timestamp_rejects_non_finite():
    with pytest.raises(ValidationError, match="finite"):
        CloudCostSummary.model_validate(_cloud_cost(float("inf")))


def test_money_becomes_exact_decimal():
    summary = CloudCostSummary.model_validate_json(json.dumps(_cloud_cost(DAY_SECONDS)))

    point = summary.resources[0].data[0]
    assert point.compute == Decimal("1.25")
    assert point.total == Decimal("1.75")
    assert isinstance(point.storage, Decimal)


def test_money_keeps_shortest_float_text():
    body = '{"resources":[{"entity":{"uid":"n"},"data":[{"timestamp":1,"cpu":0.1,"total":0.3}]}]}'

    point = ResourceCostSummary.model_validate_json(body).resources[0].data[0]

    assert point.cpu == Decimal("0.1")
    assert point.total == Decimal("0.3")
    assert point.memory == Decimal(0)


def test_unknown_fields_are_ignored():
    body = {
        "items": [
            {
                "metadata": {"uid": "c1", "name": "alpha", "labels": {"team": "web"}, "future": 1},
                "specSummary": {"cloudConfig": {"uid": "cc1", "cloudType": "aws", "new": [1]}},
                "status": {"state": "Running", "somethingNew": {"deep": True}},
                "brandNewSection": {"x": "y"},
            }
        ],
        "listmeta": {"continue": "", "count": 1, "extra": "ignored"},
        "topLevelExtra": 42,
    }

    page = ClusterSearchPage.model_validate(body)

    cluster = page.items[0]
    assert cluster.metadata.labels == {"team": "web"}
    assert cluster.spec_summary.cloud_config is not None
    assert cluster.spec_summary.cloud_config.cloud_type == "aws"
    assert cluster.status.state == "Running"
    assert not hasattr(cluster, "brandNewSection")


def test_null_lists_and_maps_read_as_empty():
    body = {
        "items": [{"metadata": {"uid": "c1", "labels": None}, "specSummary": None}],
        "listmeta": None,
    }

    page = ClusterSearchPage.model_validate(body)

    assert page.items[0].metadata.labels == {}
    assert page.items[0].spec_summary.cluster_profile_templates == []
    assert page.listmeta.continue_token == ""


def test_workload_namespace_name_falls_back_to_entity():
    body = {
        "namespaces": [
            {"metadata": {"namespace": "web", "labels": {"team": "a"}}},
            {"metadata": {"entity": {"name": "batch", "kind": "namespace"}, "labels": None}},
        ]
    }

    namespaces = WorkloadNamespaces.model_validate(body).namespaces

    assert [namespace.name for namespace in namespaces] == ["web", "batch"]
    assert namespaces[1].metadata.labels == {}


def test_error_body_accepts_nulls():
    error = ErrorBody.model_validate({"code": "ResourceNotFound", "message": None, "ref": None})

    assert error.code == "ResourceNotFound"
    assert error.message == ""


NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Sat, 14 Mar 2026 12:00:30 GMT", 30.0),
        ("Sat, 14 Mar 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-3", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, NOW) == expected


def test_format_time_is_rfc3339_utc():
    assert format_time(datetime(2026, 3, 14, tzinfo=UTC)) == "2026-03-14T00:00:00Z"
    assert format_time(DAY.date()) == "2026-03-14T00:00:00Z"
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 3, 14))
