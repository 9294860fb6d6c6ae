"""``costwarden policy validate|schema|explain``: check policy files and show decisions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich import box
from rich.markup import escape
from rich.table import Table

from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.domain.governance import ActionRequest, ActionScope
from costwarden.errors import ConfigError
from costwarden.policy import FileReport, Policy, check_files, load_policies
from costwarden.policy.loader import policy_files
from costwarden.policy.variables import VARIABLES

policy_app = typer.Typer(
    help="Validate cost policy files, print their JSON Schema, and explain decisions.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("validate")
def validate_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Policy files, or directories of *.yaml and *.yml policy files."),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML settings file whose approvals.groups the approvers must name; default: "
            "the global --config or COSTWARDEN_CONFIG, and without either the groups are not "
            "checked.",
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate policy files and list their policies; exit 2 and list every problem if invalid."""
    files = policy_files(paths)
    if not files:
        raise ConfigError(f"no *.yaml or *.yml files in {', '.join(map(str, paths))}")
    reports = check_files(files, approver_groups=_approver_groups(ctx, config))
    problems = [problem for report in reports for problem in report.problems]

    if as_json:
        print_json({"valid": not problems, "files": [_report_json(r) for r in reports]})
    else:
        for report in reports:
            if report.ok:
                stdout.print(_table(report))
        for problem in problems:
            stderr.print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False)
    if problems:
        raise typer.Exit(2)


@policy_app.command("schema")
def schema_command(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the schema to this file.", dir_okay=False),
    ] = None,
) -> None:
    """Print the JSON Schema of policy files (docs/schemas/policy.schema.json)."""
    from costwarden.policy.schema import render_schema, write_schema

    if output is None:
        typer.echo(render_schema(), nl=False)
        return
    changed = write_schema(output)
    stdout.print(f"{output} {'updated' if changed else 'is up to date'}", highlight=False)


@policy_app.command("explain")
def explain_command(
    ctx: typer.Context,
    action: Annotated[str, typer.Option("--action", help="Action name, such as ticket.")],
    kind: Annotated[
        str,
        typer.Option("--kind", help="Scope kind: cluster, machine_pool, namespace, repository."),
    ] = "machine_pool",
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster name.")] = None,
    cluster_uid: Annotated[str | None, typer.Option("--cluster-uid", help="Cluster uid.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Pool, namespace or repository name.")
    ] = None,
    project: Annotated[str | None, typer.Option("--project", help="Palette project.")] = None,
    cloud: Annotated[str | None, typer.Option("--cloud", help="Cloud type, such as aws.")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Namespace.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Scope label as key=value; repeatable.")
    ] = None,
    facts: Annotated[
        Path | None,
        typer.Option(
            "--facts",
            help="YAML or JSON file of condition variables: cluster, pool, namespace, workload, "
            "recommendation, alert.",
            dir_okay=False,
        ),
    ] = None,
    policies: Annotated[
        list[Path] | None,
        typer.Option("--policies", help="Policy files or directories; default: policy.paths."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Decide the mode and approvals for one action on one scope, and print the reasons."""
    settings = state(ctx).settings()
    paths = policies or settings.policy.paths
    policy_set = load_policies(
        paths, settings=settings.policy, approver_groups=_approver_groups(ctx, None)
    )
    scope = ActionScope(
        kind=kind,
        cluster_uid=cluster_uid,
        cluster=cluster,
        name=name,
        project=project,
        cloud=cloud,
        namespace=namespace,
        labels=_labels(label or []),
    )
    request = ActionRequest(action, scope, {}, "recommendation", "explain")
    decision = policy_set.decide(request, _facts(facts))

    if as_json:
        print_json(_decision_json(decision))
        return
    if decision.mode == "monitor":
        needed = "reported only, nothing runs"
    else:
        needed = f"{decision.required_approvals} approval(s) needed" + (
            f" from {', '.join(decision.approver_groups)}" if decision.approver_groups else ""
        )
    stdout.print(
        f"[bold]{escape(action)}[/] on {escape(kind)}: mode [bold]{decision.mode}[/], "
        f"production {'yes' if decision.production else 'no'}, {needed}",
        highlight=False,
    )
    for reason in decision.reasons:
        stdout.print(f"  - {escape(reason)}", highlight=False)


def _approver_groups(ctx: typer.Context, config: Path | None) -> list[str] | None:
    """Return the names in approvals.groups when a settings file is given, else None."""
    cli = state(ctx)
    if config is not None:
        cli.config_file = config
    if cli.config_file is None and not os.environ.get("COSTWARDEN_CONFIG"):
        return None
    return list(cli.settings().approvals.groups) or None


def _table(report: FileReport) -> Table:
    table = Table(title=escape(report.path), box=box.SIMPLE, title_justify="left")
    table.add_column("Policy", overflow="fold")
    table.add_column("Selector", overflow="fold")
    table.add_column("Condition", overflow="fold")
    table.add_column("Actions", overflow="fold")
    for policy in report.policies:
        table.add_row(
            escape(policy.name + _markers(policy)),
            escape(policy.selector.summary()),
            escape(policy.condition.source if policy.condition else "-"),
            escape("\n".join(_rule_text(rule) for rule in policy.rules) or "-"),
        )
    return table


def _markers(policy: Policy) -> str:
    marks = [
        word
        for word, flag in (("production", policy.production), ("critical", policy.critical))
        if flag
    ]
    return f" ({', '.join(marks)})" if marks else ""


def _rule_text(rule: Any) -> str:
    text = f"{rule.action}: {rule.mode}"
    if rule.mode != "monitor" and (rule.min_approvals > 1 or rule.approvers):
        who = f" from {', '.join(rule.approvers)}" if rule.approvers else ""
        text += f", {rule.min_approvals} approval(s){who}"
    return text


def _report_json(report: FileReport) -> dict[str, Any]:
    return {
        "path": report.path,
        "digest": report.digest,
        "policies": [dict(policy.spec) for policy in report.policies],
        "problems": [
            {
                "line": p.line,
                "policy": p.policy,
                "field": p.field,
                "value": p.value,
                "message": p.message,
            }
            for p in report.problems
        ],
    }


def _decision_json(decision: Any) -> dict[str, Any]:
    return {
        "action": decision.action,
        "mode": decision.mode,
        "policy": decision.policy,
        "production": decision.production,
        "required_approvals": decision.required_approvals,
        "approver_groups": list(decision.approver_groups),
        "reasons": list(decision.reasons),
        "digest": decision.digest,
    }


def _labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--label {value!r} is invalid; write key=value, such as env=production"
            )
        labels[key.strip()] = text.strip()
    return labels


def _facts(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the facts file: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of variables such as pool: {{gpu: 1}}")
    for key, value in data.items():
        if key not in VARIABLES or key == "scope":
            known = ", ".join(name for name in VARIABLES if name != "scope")
            raise ConfigError(f"{path}: unknown variable {key!r}; use {known}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a mapping of fields, such as gpu: 1")
    return json.loads(json.dumps(data, default=str))
