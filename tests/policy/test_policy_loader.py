"""Loading and validating policy files: every problem names the file, line, policy and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_helpers import REGISTRY

from costwarden.errors import PolicyFileError
from costwarden.policy import check_file, load_policies
from costwarden.policy.loader import check_text

VALID = """\
# GPU pools that no workload uses
policies:
  - name: gpu-idle-pools
    description: Shrink GPU pools that no workload requests GPUs on.
    selector:
      kinds: [machine_pool]
      clouds: [aws]
      labels: "team in (ml,data)"
    condition: "pool.gpu > 0 && workload.gpu_requested == 0"
    actions:
      - {action: palette.resize_pool, mode: approve, approvers: [platform-leads], min_approvals: 2}
      - {action: ticket, mode: auto}
  - name: production
    selector:
      labels: "tier=prod"
    production: true
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _messages(text: str) -> list[str]:
    report = check_text(text, "p.yaml", registry=REGISTRY)
    assert not report.ok
    return [str(problem) for problem in report.problems]


def test_valid_file_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, "gpu.yaml", VALID)

    policies = load_policies([path], registry=REGISTRY)

    assert [p.name for p in policies.policies] == ["gpu-idle-pools", "production"]
    first = policies.policies[0]
    assert first.line == 3
    assert first.selector.summary() == "kinds=machine_pool clouds=aws labels=team in (ml,data)"
    assert first.rule("palette.resize_pool").approvers == ("platform-leads",)
    assert first.rule("palette.resize_pool").min_approvals == 2
    assert first.rule("ticket").mode == "auto"
    assert first.condition is not None
    assert policies.policies[1].production is True
    assert set(policies.file_digests) == {str(path)}
    assert len(policies.digest) == 64


def test_directory_expands_to_yaml_files(tmp_path: Path) -> None:
    _write(tmp_path, "b.yml", "policies:\n  - {name: b, production: true}\n")
    _write(tmp_path, "a.yaml", "policies:\n  - {name: a, critical: true}\n")
    _write(tmp_path, "notes.txt", "not a policy")

    policies = load_policies([tmp_path], registry=REGISTRY)

    assert [p.name for p in policies.policies] == ["a", "b"]


def test_digest_ignores_layout_and_comments(tmp_path: Path) -> None:
    compact = (
        "policies: [{name: gpu-idle-pools, description: 'Shrink GPU pools that no workload "
        "requests GPUs on.', selector: {kinds: [machine_pool], clouds: [aws], labels: "
        "'team in (ml,data)'}, condition: 'pool.gpu > 0 && workload.gpu_requested == 0', "
        "actions: [{action: palette.resize_pool, mode: approve, approvers: [platform-leads], "
        "min_approvals: 2}, {action: ticket, mode: auto}]}, "
        "{name: production, selector: {labels: 'tier=prod'}, production: true}]"
    )
    first = check_text(VALID, "a.yaml", registry=REGISTRY)
    second = check_text(compact, "b.yaml", registry=REGISTRY)
    changed = check_text(VALID.replace("min_approvals: 2", "min_approvals: 3"), registry=REGISTRY)

    assert first.ok
    assert second.ok
    assert changed.ok
    assert first.digest == second.digest
    assert first.digest != changed.digest


def test_set_digest_changes_with_any_policy(tmp_path: Path) -> None:
    path = _write(tmp_path, "gpu.yaml", VALID)
    before = load_policies([path], registry=REGISTRY).digest

    path.write_text(VALID.replace("tier=prod", "tier=production"), encoding="utf-8")
    after = load_policies([path], registry=REGISTRY).digest

    assert before != after


def test_yaml_syntax_error_has_line() -> None:
    messages = _messages("policies:\n  - name: a\n    actions: [unclosed\n")

    assert len(messages) == 1
    assert messages[0].startswith("p.yaml, line 4: not valid YAML")


def test_repeated_key_is_rejected() -> None:
    messages = _messages("policies:\n  - name: a\n    name: b\n    production: true\n")

    assert messages == ["p.yaml, line 3: key 'name' appears twice in one mapping"]


def test_empty_and_wrong_top_level() -> None:
    assert _messages("") == ["p.yaml: the file is empty; expected a mapping with a 'policies' list"]
    assert _messages("- a\n") == [
        "p.yaml, line 1: expected a mapping with a 'policies' list at the top level"
    ]
    assert _messages("version: 1\n") == [
        "p.yaml, line 1, field policies: missing; list the policies under 'policies:'"
    ]


def test_unknown_top_level_key_and_version() -> None:
    messages = _messages("version: 2\npolicy: []\npolicies:\n  - {name: a, production: true}\n")

    assert any("line 1, field version" in m and "got 2" in m for m in messages)
    assert any("line 2, field policy: unknown field" in m for m in messages)


def test_schema_problems_are_all_reported() -> None:
    text = """\
policies:
  - name: Bad Name
    selector: {kinds: [pod]}
    actions:
      - {action: ticket, mode: sometimes, extra: 1}
  - name: no-effect
  - name: good
    actions:
      - {action: ticket, mode: approve, min_approvals: 9}
"""
    messages = _messages(text)

    assert "p.yaml, line 2, policy 'Bad Name', field name: invalid policy name" in messages[0]
    assert any(
        "line 3, policy 'Bad Name', field selector.kinds.0" in m and "'pod'" in m for m in messages
    )
    assert any("field actions.0.mode" in m and "'sometimes'" in m for m in messages)
    assert any("field actions.0.extra: unknown field" in m for m in messages)
    assert any("policy 'no-effect'" in m and "the policy has no effect" in m for m in messages)
    assert any("line 9, policy 'good', field actions.0.min_approvals" in m for m in messages)
    assert len(messages) == 6


def test_unknown_action_lists_known_names() -> None:
    text = "policies:\n  - name: a\n    actions:\n      - {action: palette.frob, mode: approve}\n"
    messages = _messages(text)

    assert messages[0].startswith(
        "p.yaml, line 4, policy 'a', field actions.0.action: unknown action 'palette.frob'"
    )
    assert "palette.resize_pool" in messages[0]


def test_auto_rejected_for_unsafe_action() -> None:
    text = (
        "policies:\n  - name: a\n    actions:\n"
        "      - {action: palette.set_instance_type, mode: auto}\n"
    )
    messages = _messages(text)

    assert len(messages) == 1
    assert "field actions.0.mode" in messages[0]
    assert "palette.set_instance_type is not safe; use approve" in messages[0]


def test_action_listed_twice() -> None:
    text = (
        "policies:\n  - name: a\n    actions:\n      - {action: ticket, mode: auto}\n"
        "      - {action: ticket, mode: approve}\n"
    )

    assert _messages(text) == [
        "p.yaml, line 5, policy 'a', field actions.1.action: ticket is listed twice; give each "
        "action one entry"
    ]


def test_label_selector_that_does_not_parse() -> None:
    text = "policies:\n  - name: a\n    selector: {labels: 'env in ()'}\n    production: true\n"
    messages = _messages(text)

    assert len(messages) == 1
    assert "policy 'a', field selector.labels" in messages[0]
    assert "empty value set" in messages[0]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("pool.gpu >", "invalid CEL at column 10"),
        ("pool.gpux > 0", "unknown field pool.gpux; the fields of pool are"),
        ("gpu > 0", "unknown variable 'gpu'"),
        ("frob(pool.gpu)", "unknown function frob()"),
        ("pool.gpu > 0.5", "pool.gpu is an int and 0.5 is a double"),
        ("pool.gpu > 0.5", "convert the field with double(pool.gpu)"),
        ("pool.gpu > 1.0", "write the literal as the integer 1"),
        ("cluster.cost_per_month > 100", "write the literal as 100.0"),
        ("pool.size + 1", "the condition returns int, not bool"),
        ("pool.name", "the condition returns string, not bool"),
        ("timestamp(\"garbage\") < now", "Unable to parse string [garbage]"),
        ("duration(\"soon\") > duration(\"1h\")", "duration('24h')"),
    ],
)
def test_condition_problems(condition: str, expected: str) -> None:
    text = f"policies:\n  - name: a\n    condition: '{condition}'\n    production: true\n"
    messages = _messages(text)

    assert len(messages) == 1
    assert messages[0].startswith("p.yaml, line 3, policy 'a', field condition: ")
    assert expected in messages[0]


def test_semantic_problems_of_several_policies_are_collected() -> None:
    text = """\
policies:
  - name: a
    condition: "pool.gpux > 0"
    actions: [{action: nope, mode: approve}]
  - name: b
    actions: [{action: palette.set_capacity_type, mode: auto}]
"""
    messages = _messages(text)

    assert len(messages) == 3
    assert [m.split(",")[1].strip() for m in messages] == ["line 3", "line 4", "line 6"]


def test_duplicate_name_in_one_file() -> None:
    text = "policies:\n  - {name: a, production: true}\n  - {name: a, critical: true}\n"

    assert _messages(text) == [
        "p.yaml, line 3, policy 'a', field name: duplicate policy name; line 2 uses it already"
    ]


def test_duplicate_name_of_invalid_policy() -> None:
    text = (
        "policies:\n"
        "  - {name: dup, production: true}\n"
        "  - {name: dup, actions: [{action: nope, mode: approve}]}\n"
    )

    messages = _messages(text)

    assert any("duplicate policy name; line 2 uses it already" in m for m in messages)
    assert any("nope" in m for m in messages)


def test_duplicate_name_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", "policies:\n  - {name: same, production: true}\n")
    second = _write(
        tmp_path,
        "b.yaml",
        "policies:\n  - {name: other, critical: true}\n  - {name: same, critical: true}\n",
    )

    with pytest.raises(PolicyFileError) as caught:
        load_policies([first, second], registry=REGISTRY)

    error = caught.value
    assert error.path == str(second)
    assert error.policy == "same"
    assert error.field == "name"
    assert f"duplicate policy name; {first} line 2 uses it already" in str(error)


def test_error_carries_first_problem_and_all_problems(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "bad.yaml",
        "policies:\n  - name: a\n    actions: [{action: ticket, mode: often}]\n"
        "  - name: b\n    condition: 'x == 1'\n    production: true\n",
    )

    with pytest.raises(PolicyFileError) as caught:
        load_policies([path], registry=REGISTRY)

    error = caught.value
    assert error.exit_code == 2
    assert error.policy == "a"
    assert error.field == "actions.0.mode"
    assert error.value == "often"
    assert len(error.problems) == 2  # type: ignore[attr-defined]
    assert str(error).startswith(f"{path}: 2 problems:\n  line 3, policy 'a'")


def test_missing_file_and_directory_messages(tmp_path: Path) -> None:
    missing = check_file(tmp_path / "nope.yaml", registry=REGISTRY)

    assert [str(p) for p in missing.problems] == [
        f"{tmp_path / 'nope.yaml'}: file not found; check the path or policy.paths"
    ]


def test_not_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"policies:\n  - name: caf\xe9\n")

    report = check_file(path, registry=REGISTRY)

    assert [str(p) for p in report.problems] == [
        f"{path}, line 2: not UTF-8 text; save the file as UTF-8"
    ]


def test_default_registry_holds_builtin_actions(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "pool.yaml",
        "policies:\n  - name: a\n    actions: [{action: palette.resize_pool, mode: approve}]\n",
    )

    policies = load_policies([path])

    assert policies.policies[0].rule("palette.resize_pool") is not None


def test_semantic_checks_run_despite_schema_errors() -> None:
    text = """\
policies:
  - name: Bad Name
    selector: {labels: 'env in ()'}
    condition: "pool.gpux > 0"
    actions:
      - {action: palette.frob, mode: approve}
      - {action: palette.set_capacity_type, mode: auto}
      - {action: ticket, mode: sometimes}
"""
    messages = _messages(text)

    assert any("field name: invalid policy name" in m for m in messages)
    assert any("field actions.2.mode" in m and "'sometimes'" in m for m in messages)
    assert any("field selector.labels" in m and "empty value set" in m for m in messages)
    assert any("field condition: unknown field pool.gpux" in m for m in messages)
    assert any("field actions.0.action: unknown action 'palette.frob'" in m for m in messages)
    assert any("field actions.1.mode: auto is allowed only" in m for m in messages)
    assert len(messages) == 6


def test_schema_error_of_a_field_is_not_repeated() -> None:
    text = """\
policies:
  - name: Bad Name
    actions:
      - {action: palette.set_capacity_type, mode: [auto]}
"""
    messages = _messages(text)

    assert len(messages) == 2
    assert not any("auto is allowed only" in m for m in messages)


GROUPS_TEXT = """\
policies:
  - name: a
    actions:
      - {action: palette.resize_pool, mode: approve, approvers: [finops, nosuchgroup]}
"""


def test_unknown_approver_group_with_settings() -> None:
    report = check_text(GROUPS_TEXT, "p.yaml", registry=REGISTRY, approver_groups=["finops"])
    messages = [str(problem) for problem in report.problems]

    assert len(messages) == 1
    assert "line 4, policy 'a', field actions.0.approvers.1" in messages[0]
    assert "approver group 'nosuchgroup' is not defined in approvals.groups" in messages[0]
    assert "(defined: finops)" in messages[0]
    assert report.problems[0].value == "nosuchgroup"


def test_approver_groups_unchecked_without_settings() -> None:
    unchecked = check_text(GROUPS_TEXT, "p.yaml", registry=REGISTRY)
    defined = check_text(
        GROUPS_TEXT, "p.yaml", registry=REGISTRY, approver_groups=["finops", "nosuchgroup"]
    )

    assert unchecked.ok
    assert defined.ok


def test_load_policies_rejects_unknown_group(tmp_path: Path) -> None:
    path = _write(tmp_path, "groups.yaml", GROUPS_TEXT)

    with pytest.raises(PolicyFileError, match="'nosuchgroup' is not defined"):
        load_policies([path], registry=REGISTRY, approver_groups=[])
