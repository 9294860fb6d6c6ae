import pytest

from costwarden.domain.selector import matches_all, parse_selector

LABELS = {"team": "ml", "env": "dev", "cost-center": "cc-42"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=ml", True),
        ("team==ml", True),
        ("team=ml,env!=prod", True),
        ("team=ml,env!=dev", False),
        ("env in (dev,staging)", True),
        ("env notin (dev,staging)", False),
        ("team in (ml), env in (dev, staging)", True),
        ("cost-center", True),
        ("!cost-center", False),
        ("!gpu", True),
        ("gpu!=true", True),
        ("gpu=true", False),
    ],
)
def test_selector_matches(selector, expected):
    assert matches_all(parse_selector(selector), LABELS) is expected


@pytest.mark.parametrize("selector", ["team=", "team=ml,", "a b", "env in ()", "=x"])
def test_selector_rejects_invalid(selector):
    if selector == "team=":
        # An empty value is valid in Kubernetes: it matches a label whose value is empty.
        assert matches_all(parse_selector(selector), {"team": ""})
        return
    with pytest.raises(ValueError):
        parse_selector(selector)
