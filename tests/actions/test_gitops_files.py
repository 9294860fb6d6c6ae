"""Value edits in YAML and Terraform files keep every other character."""

from __future__ import annotations

import pytest
from gitops_samples import PROFILE, TFVARS
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.actions.repofiles import format_of, read_values, replace_values
from costwarden.errors import FileEditError

TERRAFORM = """\
resource "spectrocloud_cluster_aws" "prod" {
  name = "prod-eu" // the name Palette shows
  tags = ["env:production", "team:${var.team}"]
  machine_pool {
    name          = "worker"
    count         = 6   /* Q3 */
    instance_type = "m5.2xlarge"
  }
  machine_pool {
    name  = "gpu"
    count = 1
  }
}
"""
POOL = "resource[spectrocloud_cluster_aws][prod].machine_pool[name=worker]"


def test_yaml_edit_keeps_comments_and_quotes() -> None:
    changes = {"machinePools[name=worker].size": 4,
               "machinePools[name=worker].instanceType": "m5.xlarge"}

    text = replace_values(PROFILE, "yaml", changes, "p.yaml")

    expected = PROFILE.replace("size: 6 ", "size: 4 ").replace('"m5.2xlarge"', '"m5.xlarge"')
    assert text == expected


def test_terraform_block_edit() -> None:
    text = replace_values(TERRAFORM, "hcl", {f"{POOL}.count": 3}, "main.tf")

    assert text == TERRAFORM.replace("count         = 6", "count         = 3")
    assert read_values(text, "hcl", ["resource[prod].machine_pool[name=gpu].count"], "main.tf") == {
        "resource[prod].machine_pool[name=gpu].count": 1
    }


def test_tfvars_list_item_edit() -> None:
    text = replace_values(TFVARS, "hcl", {"machine_pools[0].instance_type": "m6i.xlarge"}, "v")

    assert text == TFVARS.replace('"m5.2xlarge"', '"m6i.xlarge"')


def test_ambiguous_block_is_rejected() -> None:
    with pytest.raises(FileEditError, match="matches 2 blocks"):
        read_values(TERRAFORM, "hcl", ["resource[prod].machine_pool.count"], "main.tf")


def test_expression_is_not_edited() -> None:
    with pytest.raises(FileEditError, match="not a literal value"):
        replace_values("count = var.workers\n", "hcl", {"count": 2}, "main.tf")


def test_missing_key_names_file() -> None:
    with pytest.raises(FileEditError, match=r"p\.yaml: key machinePools\[name=db\]\.size"):
        read_values(PROFILE, "yaml", ["machinePools[name=db].size"], "p.yaml")


def test_yaml_string_that_reads_as_number() -> None:
    text = "version: v1\n"

    changed = replace_values(text, "yaml", {"version": "1.0"}, "p.yaml")

    assert read_values(changed, "yaml", ["version"], "p.yaml") == {"version": "1.0"}


def test_format_from_extension() -> None:
    assert format_of("terraform/prod.tfvars") == "hcl"
    assert format_of("clusters/prod/profile.yml") == "yaml"
    with pytest.raises(FileEditError, match="set format"):
        format_of("clusters/prod/values.txt")


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=10_000),
    kind=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                 max_size=20),
)
def test_edits_change_only_the_value(size: int, kind: str) -> None:
    for text, fmt, keys in (
        (PROFILE, "yaml", ("machinePools[name=worker].size",
                           "machinePools[name=worker].instanceType")),
        (TERRAFORM, "hcl", (f"{POOL}.count", f"{POOL}.instance_type")),
    ):
        changed = replace_values(text, fmt, {keys[0]: size, keys[1]: kind}, "f")

        assert read_values(changed, fmt, list(keys), "f") == {keys[0]: size, keys[1]: kind}
        before = [line for line in text.splitlines() if "size" not in line and "count" not in line
                  and "nstance" not in line]
        after = [line for line in changed.splitlines() if "size" not in line
                 and "count" not in line and "nstance" not in line]
        assert after == before
