"""``costwarden config``: validate the settings, and print the configuration reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from costwarden.cli.common import state, stdout

config_app = typer.Typer(help="Check the settings and print their reference.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("check")
def check(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML settings file to check; default: the global --config or COSTWARDEN_CONFIG.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Load the settings from flags, environment and file, and validate them.

    An invalid setting prints its key, environment variable and the reason, and exits with 2.
    The budget file named by budgets_file and the policy files in policy.paths are checked too;
    policy approvers must name groups of approvals.groups.
    """
    cli = state(ctx)
    if config is not None:
        cli.config_file = config
    settings = cli.settings()

    budgets = ""
    if settings.budgets_file is not None:
        from costwarden.budgets.loader import load_budgets

        count = len(load_budgets(settings.budgets_file))
        budgets = f"; {count} budgets in {settings.budgets_file}"
    policies = ""
    if settings.policy.paths:
        from costwarden.policy import load_configured_policies

        policy_set = load_configured_policies(settings)
        count, files = len(policy_set.policies), len(policy_set.files)
        policies = (
            f"; {count} {'policy' if count == 1 else 'policies'} in {files} "
            f"{'file' if files == 1 else 'files'}"
        )
    source = f" from {cli.config_file}" if cli.config_file else ""
    stdout.print(f"configuration is valid{source}{budgets}{policies}", highlight=False)


@config_app.command("reference")
def reference(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the Markdown page to this file instead of stdout.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Print the reference of every setting (docs/configuration.md) as Markdown."""
    from costwarden.config_docs import render_reference, write_reference

    if output is None:
        typer.echo(render_reference(), nl=False)
        return
    changed = write_reference(output)
    stdout.print(f"{output} {'updated' if changed else 'is up to date'}", highlight=False)
