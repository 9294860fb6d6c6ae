"""The gitops.pull_request action: change a cluster's profile or Terraform values by pull request.

Each request gets one branch, named from its subject and digest
(``costwarden/<subject>-<digest8>``), so a repeated apply finds the branch and its open pull
request and reuses them instead of opening a duplicate. The action reads the file at the base
branch, checks that each value still equals ``ActionRequest.expected`` and changes only those
values (see ``repofiles``). A pull request changes nothing until someone merges it, so the
action is safe and reversible: rollback closes an open pull request and deletes its branch, and
opens a revert pull request when it was merged.

Providers: ``github`` and ``gitlab`` speak the REST APIs (``actions/github.py``,
``actions/gitlab.py``); ``local`` drives the ``git`` CLI on a repository on disk, where the
branch stands in for the pull request.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import string
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import Field, model_validator

from costwarden.actions.registry import ACTIONS, Action, ActionOutcome, ActionParams
from costwarden.actions.repofiles import (
    FileFormat,
    Scalar,
    format_of,
    read_values,
    replace_values,
    same_value,
)
from costwarden.config import GitOpsFileSettings, GitOpsRepositorySettings
from costwarden.domain.governance import ActionRequest
from costwarden.errors import ConfigError, FileEditError, RepositoryError, StaleStateError

logger = logging.getLogger(__name__)

PoolField = Literal["size", "instance_type", "capacity_type"]
PullRequestState = Literal["open", "closed", "merged"]

MAX_BRANCH_SUBJECT_CHARS = 40


@dataclass(frozen=True, slots=True)
class RepoFile:
    """A file's text at a ref, with the id that a provider needs to update it safely.

    ``version`` is the blob sha on GitHub and the last commit id on GitLab and local.
    """

    path: str
    text: str
    version: str


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request (GitHub), merge request (GitLab) or branch (local).

    ``number`` is the PR number, the MR iid, or the branch name for local. ``head`` is the
    commit at the tip of the branch when it was read.
    """

    number: str
    url: str
    branch: str
    state: PullRequestState
    head: str | None = None


class GitProvider(Protocol):
    """The operations of a Git host that the action uses; each raises ``RepositoryError``."""

    name: str

    def default_branch(self) -> str: ...

    def branch_head(self, branch: str) -> str | None: ...

    def read_file(self, path: str, ref: str) -> RepoFile | None: ...

    def commit_file(
        self, branch: str, start: str | None, path: str, text: str, message: str,
        previous: RepoFile,
    ) -> str:
        """Commit ``text`` to ``path`` on ``branch`` and return the commit id.

        ``start`` creates the branch from that branch first; ``previous`` is the version
        read before the edit, so a concurrent change fails instead of being overwritten.
        """
        ...

    def find_pull_request(self, branch: str) -> PullRequest | None:
        """Return the open pull request from ``branch``, or None."""
        ...

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, labels: list[str]
    ) -> PullRequest:
        """Open a pull request, or return the open one when the host reports a duplicate."""
        ...

    def pull_request(self, number: str, head: str | None) -> PullRequest: ...

    def close_pull_request(self, pull: PullRequest) -> None: ...

    def delete_branch(self, branch: str) -> None:
        """Delete a branch; a branch that is already gone is not an error."""
        ...

    def close(self) -> None: ...


class PullRequestParams(ActionParams):
    """The change, its repository and file, and the text of the pull request."""

    repository: str = Field(description="Name under actions.gitops.repositories.")
    file: str | None = Field(
        None, description="Name of a file of the repository; default its only file."
    )
    path: str | None = Field(None, description="Path that replaces the file's path template.")
    changes: dict[str, Scalar] = Field(
        default_factory=dict, description="New value by key path, e.g. workers.count: 2."
    )
    pool: str | None = Field(None, description="Machine pool that size and the types change.")
    size: int | None = Field(None, ge=0, description="New node count of the pool.")
    instance_type: str | None = Field(None, description="New instance type of the pool.")
    capacity_type: Literal["on-demand", "spot"] | None = Field(
        None, description="New capacity type of the pool."
    )
    title: str | None = Field(None, description="Pull request title; default a summary.")
    reason: str | None = Field(None, description="Why the change saves money.")
    estimated_savings: str | None = Field(
        None, description="Estimated savings, with unit, e.g. 412.50 USD per month."
    )
    evidence: dict[str, str] = Field(
        default_factory=dict, description="Facts behind the recommendation, by label."
    )
    link: str | None = Field(None, description="URL of the recommendation in costwarden.")

    @model_validator(mode="after")
    def _something_to_change(self) -> PullRequestParams:
        pool_values = self.pool_values()
        if self.pool is None and pool_values:
            raise ValueError("size, instance_type and capacity_type need pool")
        if self.pool is not None and not pool_values:
            raise ValueError(f"pool {self.pool!r} needs size, instance_type or capacity_type")
        if not self.changes and not pool_values:
            raise ValueError("set changes, or pool with size, instance_type or capacity_type")
        return self

    def pool_values(self) -> dict[PoolField, Scalar]:
        values: dict[PoolField, Scalar] = {
            "size": self.size,
            "instance_type": self.instance_type,
            "capacity_type": self.capacity_type,
        }
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Change:
    """One value to change: its key path, the name ``expected`` uses for it, and the new value."""

    key: str
    expected_name: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class Plan:
    """The resolved change: repository, file, values and branch of one request."""

    repository: GitOpsRepositorySettings
    repository_name: str
    path: str
    format: FileFormat
    changes: tuple[Change, ...]
    branch: str
    title: str
    body: str


@ACTIONS.register("gitops.pull_request")
class PullRequestAction(Action):
    """Open a pull or merge request that changes a cluster's profile or Terraform values."""

    params_class = PullRequestParams
    scope_kinds = ("cluster", "machine_pool", "repository")
    safe = True
    reversible = True

    def dry_run(self, request: ActionRequest, context: Any) -> ActionOutcome:
        plan = make_plan(request, context)
        with open_provider(plan.repository_name, plan.repository, context) as provider:
            base = plan.repository.base_branch or provider.default_branch()
            existing = provider.find_pull_request(plan.branch)
            if existing is not None:
                return ActionOutcome(
                    summary=f"pull request {existing.url} is already open for this change",
                    links={"pull_request": existing.url},
                    changed=False,
                )
            source = _read(provider, plan, base)
            before = _check_expected(plan, source, request.expected)
            text = replace_values(source.text, plan.format, _targets(plan), plan.path)
            diff = unified_diff(plan.path, source.text, text)
        return ActionOutcome(
            summary=f"would open a pull request from {plan.branch} into {base} changing "
            f"{plan.path}",
            before=before,
            after={"values": _targets(plan), "diff": diff, "branch": plan.branch},
        )

    def apply(self, request: ActionRequest, context: Any) -> ActionOutcome:
        plan = make_plan(request, context)
        with open_provider(plan.repository_name, plan.repository, context) as provider:
            base = plan.repository.base_branch or provider.default_branch()
            targets = _targets(plan)
            pull, before, reused = propose(provider, plan, base, targets, request.expected)

        undo = {
            "repository": plan.repository_name,
            "branch": plan.branch,
            "base": base,
            "path": plan.path,
            "format": plan.format,
            "number": pull.number,
            "head": pull.head,
            "url": pull.url,
            "before": {change.key: before[change.expected_name] for change in plan.changes},
            "after": targets,
        }
        verb = "reused the open" if reused else "opened"
        logger.info("gitops %s %s pull request %s", plan.repository_name, verb, pull.url)
        return ActionOutcome(
            summary=f"{verb} pull request {pull.url} changing {plan.path}",
            before=before,
            after={"values": targets, "branch": plan.branch},
            undo=undo,
            links={"pull_request": pull.url},
            changed=not reused,
        )

    def rollback(
        self, request: ActionRequest, undo: Mapping[str, Any], context: Any
    ) -> ActionOutcome:
        name = str(undo["repository"])
        settings = repository_settings(context, name)
        with open_provider(name, settings, context) as provider:
            pull = provider.pull_request(str(undo["number"]), undo.get("head"))
            if pull.state == "open":
                provider.close_pull_request(pull)
                provider.delete_branch(pull.branch)
                return ActionOutcome(
                    summary=f"closed pull request {pull.url} and deleted branch {pull.branch}",
                    links={"pull_request": pull.url},
                )
            if pull.state == "closed":
                provider.delete_branch(pull.branch)
                return ActionOutcome(
                    summary=f"pull request {pull.url} was already closed without merging",
                    links={"pull_request": pull.url},
                    changed=False,
                )
            revert = _revert_plan(request, undo, settings, name)
            targets = _targets(revert)
            after = undo["after"]
            expected = {change.expected_name: after[change.key] for change in revert.changes}
            opened, _, reused = propose(provider, revert, str(undo["base"]), targets, expected)
        verb = "reused the open" if reused else "opened"
        return ActionOutcome(
            summary=f"pull request {pull.url} was merged; {verb} revert pull request {opened.url}",
            before=dict(undo["after"]),
            after={"values": targets, "branch": revert.branch},
            links={"pull_request": pull.url, "revert_pull_request": opened.url},
            changed=not reused,
        )


def propose(
    provider: GitProvider,
    plan: Plan,
    base: str,
    targets: Mapping[str, Scalar],
    expected: Mapping[str, Any],
) -> tuple[PullRequest, dict[str, Scalar], bool]:
    """Commit the change to the plan's branch and open its pull request, reusing what exists.

    Return the pull request, the values read at the base branch, and whether the pull request
    already existed. An existing open pull request is returned as it is. An existing branch
    that already carries the new values gets no second commit.
    """
    source = _read(provider, plan, base)
    existing = provider.find_pull_request(plan.branch)
    if existing is not None:
        before = read_values(source.text, plan.format, [c.key for c in plan.changes], plan.path)
        return existing, {c.expected_name: before[c.key] for c in plan.changes}, True

    before = _check_expected(plan, source, expected)
    message = f"{plan.title}\n\nOpened by costwarden on branch {plan.branch}."
    if provider.branch_head(plan.branch) is None:
        text = replace_values(source.text, plan.format, targets, plan.path)
        provider.commit_file(plan.branch, base, plan.path, text, message, source)
    else:
        _commit_on_existing_branch(provider, plan, targets, expected, message)

    pull = provider.open_pull_request(
        plan.branch, base, plan.title, plan.body, list(plan.repository.labels)
    )
    return pull, before, False


def _commit_on_existing_branch(
    provider: GitProvider,
    plan: Plan,
    targets: Mapping[str, Scalar],
    expected: Mapping[str, Any],
    message: str,
) -> None:
    """Finish a branch that an earlier, interrupted apply created."""
    on_branch = _read(provider, plan, plan.branch)
    keys = [change.key for change in plan.changes]
    values = read_values(on_branch.text, plan.format, keys, plan.path)
    if all(same_value(values[key], targets[key]) for key in keys):
        return
    for change in plan.changes:
        if not same_value(values[change.key], expected.get(change.expected_name)):
            raise StaleStateError(
                f"branch {plan.branch} of repository {plan.repository_name!r} has "
                f"{change.key} = {values[change.key]!r} in {plan.path}, neither the expected "
                f"nor the new value; delete the branch and apply again"
            )
    text = replace_values(on_branch.text, plan.format, targets, plan.path)
    provider.commit_file(plan.branch, None, plan.path, text, message, on_branch)


def make_plan(request: ActionRequest, context: Any) -> Plan:
    """Resolve a request's repository, file, key paths, branch name and pull request text."""
    params = PullRequestParams.model_validate(dict(request.params))
    repository = repository_settings(context, params.repository)
    file_settings = _file_settings(repository, params)
    path = params.path or _render_path(file_settings, request, params.repository)
    changes = [Change(key, key, value) for key, value in params.changes.items()]
    if params.pool is not None:
        changes.extend(_pool_changes(params, file_settings, params.repository))

    plan = Plan(
        repository=repository,
        repository_name=params.repository,
        path=path,
        format=format_of(path, file_settings.format if file_settings else "auto"),
        changes=tuple(changes),
        branch=branch_name(repository.branch_prefix, request.subject_id, request.digest),
        title="",
        body="",
    )
    title = params.title or _default_title(plan, request)
    body = pull_request_body(plan, request, params)
    return dataclasses.replace(plan, title=title, body=body)


def branch_name(prefix: str, subject_id: str, digest: str) -> str:
    """Return ``<prefix><subject>-<digest8>``: one branch per request, valid as a git ref."""
    subject = re.sub(r"[^A-Za-z0-9._-]+", "-", subject_id).strip("-.")
    subject = re.sub(r"\.{2,}", ".", subject)[:MAX_BRANCH_SUBJECT_CHARS].strip("-.")
    return f"{prefix}{subject or 'change'}-{digest[:8]}"


def repository_settings(context: Any, name: str) -> GitOpsRepositorySettings:
    """Return the settings of a configured repository, or raise ``ConfigError`` naming them."""
    repositories = context.settings.actions.gitops.repositories
    if name not in repositories:
        known = ", ".join(sorted(repositories)) or "none"
        raise ConfigError(
            f"repository {name!r} is not under actions.gitops.repositories (configured: {known})"
        )
    settings: GitOpsRepositorySettings = repositories[name]
    return settings


@contextmanager
def open_provider(
    name: str, settings: GitOpsRepositorySettings, context: Any = None
) -> Iterator[GitProvider]:
    """Yield the provider of a repository and close its HTTP client afterwards.

    The REST providers wait between retries with the context's ``sleep``.
    """
    provider: GitProvider
    sleep = getattr(context, "sleep", time.sleep)
    if settings.provider == "github":
        from costwarden.actions.github import GitHubProvider

        provider = GitHubProvider(name, settings, sleep=sleep)
    elif settings.provider == "gitlab":
        from costwarden.actions.gitlab import GitLabProvider

        provider = GitLabProvider(name, settings, sleep=sleep)
    else:
        provider = LocalGitProvider(name, settings)
    try:
        yield provider
    finally:
        provider.close()


def unified_diff(path: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    return "".join(lines)


def pull_request_body(plan: Plan, request: ActionRequest, params: PullRequestParams) -> str:
    """Return the Markdown body: what changes and why, the savings estimate, evidence and links."""
    scope = request.scope
    where = scope.cluster or scope.cluster_uid or scope.name or "the scope"
    lines = [
        f"costwarden proposes this change to `{plan.path}` for {where}.",
        "",
        "| Key | Expected now | Proposed |",
        "| --- | --- | --- |",
    ]
    for change in plan.changes:
        current = request.expected.get(change.expected_name)
        lines.append(f"| `{change.key}` | `{current!r}` | `{change.value!r}` |")
    if params.reason:
        lines.extend(["", f"**Why:** {params.reason}"])
    if params.estimated_savings:
        lines.extend(["", f"**Estimated savings:** {params.estimated_savings} (an estimate)"])
    if params.evidence:
        lines.extend(["", "**Evidence:**"])
        lines.extend(f"- {label}: {value}" for label, value in params.evidence.items())
    if params.link:
        lines.extend(["", f"Recommendation: {params.link}"])
    lines.extend([
        "",
        "Merging applies the change through your usual pipeline. Closing the pull request "
        "leaves everything as it is.",
        "",
        f"<!-- costwarden {request.subject_kind} {request.subject_id} "
        f"digest {request.digest} -->",
    ])
    return "\n".join(lines)


def _default_title(plan: Plan, request: ActionRequest) -> str:
    scope = request.scope
    where = scope.cluster or scope.cluster_uid or scope.name or plan.path
    what = ", ".join(f"{change.key} to {change.value}" for change in plan.changes)
    return f"costwarden: set {what} on {where}"[:250]


def _file_settings(
    repository: GitOpsRepositorySettings, params: PullRequestParams
) -> GitOpsFileSettings | None:
    files = repository.files
    if params.file is not None:
        if params.file not in files:
            known = ", ".join(sorted(files)) or "none"
            raise ConfigError(
                f"repository {params.repository!r} has no file {params.file!r} under "
                f"actions.gitops.repositories.{params.repository}.files (configured: {known})"
            )
        return files[params.file]
    if len(files) == 1:
        return next(iter(files.values()))
    if params.path is not None and params.pool is None:
        return None
    raise ConfigError(
        f"repository {params.repository!r} has {len(files)} files; name one in the action's "
        "file parameter"
    )


def _render_path(
    file_settings: GitOpsFileSettings | None, request: ActionRequest, repository: str
) -> str:
    assert file_settings is not None
    scope = request.scope
    values = {
        "cluster": scope.cluster or scope.name,
        "cluster_uid": scope.cluster_uid,
        "project": scope.project,
        "cloud": scope.cloud,
        "namespace": scope.namespace,
    }
    where = f"actions.gitops.repositories.{repository}.files"
    for _, name, _, _ in string.Formatter().parse(file_settings.path):
        if name is None:
            continue
        if name not in values:
            raise ConfigError(
                f"{where}: path {file_settings.path!r} uses {{{name}}}, which is not one of "
                f"{', '.join(values)}"
            )
        if values[name] is None:
            raise ConfigError(
                f"{where}: path {file_settings.path!r} needs {name}, which the action's scope "
                f"{scope.kind} {scope.cluster_uid or scope.name or ''} does not have"
            )
    return file_settings.path.format(**values)


def _pool_changes(
    params: PullRequestParams, file_settings: GitOpsFileSettings | None, repository: str
) -> list[Change]:
    if file_settings is None or file_settings.pool_key is None:
        raise ConfigError(
            f"actions.gitops.repositories.{repository}: the file has no pool_key, so a change "
            "that names a pool cannot find its values; set pool_key or use changes"
        )
    changes = []
    for name, value in params.pool_values().items():
        key = file_settings.pool_key.format(pool=params.pool, field=file_settings.pool_fields[name])
        changes.append(Change(key, name, value))
    return changes


def _targets(plan: Plan) -> dict[str, Scalar]:
    return {change.key: change.value for change in plan.changes}


def _read(provider: GitProvider, plan: Plan, ref: str) -> RepoFile:
    found = provider.read_file(plan.path, ref)
    if found is None:
        raise FileEditError(
            f"{plan.path} not found on {ref} of repository {plan.repository_name!r}; check the "
            "file's path template"
        )
    return found


def _check_expected(
    plan: Plan, source: RepoFile, expected: Mapping[str, Any]
) -> dict[str, Scalar]:
    """Return the current values by expected name; raise ``StaleStateError`` when one differs."""
    keys = [change.key for change in plan.changes]
    current = read_values(source.text, plan.format, keys, plan.path)
    before: dict[str, Scalar] = {}
    for change in plan.changes:
        if change.expected_name not in expected:
            raise StaleStateError(
                f"the request carries no expected value for {change.expected_name}, so the "
                f"action cannot tell whether {plan.path} changed since the recommendation"
            )
        value = current[change.key]
        if not same_value(value, expected[change.expected_name]):
            raise StaleStateError(
                f"{plan.path} in repository {plan.repository_name!r} has {change.key} = "
                f"{value!r}, but the recommendation expected "
                f"{expected[change.expected_name]!r}; it changed since, so nothing was done"
            )
        before[change.expected_name] = value
    return before


def _revert_plan(
    request: ActionRequest, undo: Mapping[str, Any], settings: GitOpsRepositorySettings, name: str
) -> Plan:
    before: Mapping[str, Scalar] = undo["before"]
    changes = tuple(Change(key, key, value) for key, value in before.items())
    branch = branch_name(settings.branch_prefix, f"revert-{request.subject_id}", request.digest)
    original = str(undo.get("url", ""))
    title = f"costwarden: revert {', '.join(f'{k} to {v}' for k, v in before.items())}"[:250]
    body = "\n".join([
        f"Reverts {original}, which costwarden opened and someone merged.",
        "",
        f"This restores the previous values in `{undo['path']}`.",
        "",
        f"<!-- costwarden revert {request.subject_kind} {request.subject_id} "
        f"digest {request.digest} -->",
    ])
    return Plan(
        repository=settings,
        repository_name=name,
        path=str(undo["path"]),
        format=undo["format"],
        changes=changes,
        branch=branch,
        title=title,
        body=body,
    )


# The local provider


class LocalGitProvider:
    """A repository on disk driven with the ``git`` CLI; the branch is the pull request.

    Commits are written with plumbing commands into a temporary index, so the working tree
    and the checked-out branch stay untouched and a bare repository works too. A branch counts
    as merged when its commit is an ancestor of the base branch.
    """

    def __init__(
        self,
        name: str,
        settings: GitOpsRepositorySettings,
    ) -> None:
        self.name = name
        self.settings = settings
        self.path = Path(settings.repository).expanduser()
        if not self.path.is_dir():
            raise RepositoryError(
                f"repository {name!r}: {self.path} is not a directory; set "
                f"actions.gitops.repositories.{name}.repository to a git repository",
                repository=name,
            )

    def close(self) -> None:
        return None

    def git(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run one git command in the repository; output is UTF-8 with line endings kept."""
        full_env = {**os.environ, **self._identity(), **(env or {})}
        raw = subprocess.run(
            ["git", "-C", str(self.path), *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            env=full_env,
            check=False,
        )
        result = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(errors="replace"),
            raw.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise RepositoryError(
                f"repository {self.name!r}: git {' '.join(args[:2])} failed: "
                f"{result.stderr.strip()[:300]}",
                repository=self.name,
            )
        return result

    def default_branch(self) -> str:
        result = self.git("symbolic-ref", "--short", "HEAD", check=False)
        if result.returncode != 0:
            raise RepositoryError(
                f"repository {self.name!r}: HEAD is detached; set base_branch",
                repository=self.name,
            )
        return result.stdout.strip()

    def branch_head(self, branch: str) -> str | None:
        result = self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                          check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def read_file(self, path: str, ref: str) -> RepoFile | None:
        head = self.branch_head(ref)
        if head is None:
            raise RepositoryError(
                f"repository {self.name!r}: branch {ref} not found", repository=self.name
            )
        shown = self.git("show", f"{head}:{path}", check=False)
        if shown.returncode != 0:
            return None
        return RepoFile(path, shown.stdout, head)

    def commit_file(
        self, branch: str, start: str | None, path: str, text: str, message: str,
        previous: RepoFile,
    ) -> str:
        parent = self.branch_head(start or branch)
        if parent is None:
            raise RepositoryError(
                f"repository {self.name!r}: branch {start or branch} not found",
                repository=self.name,
            )
        if start is None and parent != previous.version:
            raise StaleStateError(
                f"branch {branch} of repository {self.name!r} moved while costwarden edited "
                f"{path}; apply again"
            )
        blob = self.git("hash-object", "-w", "--stdin", stdin=text).stdout.strip()
        with tempfile.TemporaryDirectory(prefix="costwarden-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.git("read-tree", parent, env=env)
            self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).stdout.strip()
        commit = self.git("commit-tree", tree, "-p", parent, "-m", message).stdout.strip()
        # The old value makes update-ref fail when the branch moved, or exists, meanwhile.
        old = parent if start is None else "0" * 40
        self.git("update-ref", f"refs/heads/{branch}", commit, old)
        return commit

    def find_pull_request(self, branch: str) -> PullRequest | None:
        head = self.branch_head(branch)
        if head is None:
            return None
        pull = self._as_pull(branch, head)
        return pull if pull.state == "open" else None

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, labels: list[str]
    ) -> PullRequest:
        head = self.branch_head(branch)
        if head is None:
            raise RepositoryError(
                f"repository {self.name!r}: branch {branch} not found", repository=self.name
            )
        return self._as_pull(branch, head)

    def pull_request(self, number: str, head: str | None) -> PullRequest:
        current = self.branch_head(number)
        if current is not None:
            return self._as_pull(number, current)
        if head is not None and self._merged(head):
            return PullRequest(number, self._url(number), number, "merged", head)
        return PullRequest(number, self._url(number), number, "closed", head)

    def close_pull_request(self, pull: PullRequest) -> None:
        return None

    def delete_branch(self, branch: str) -> None:
        if self.branch_head(branch) is not None:
            self.git("update-ref", "-d", f"refs/heads/{branch}")

    def _as_pull(self, branch: str, head: str) -> PullRequest:
        state: PullRequestState = "merged" if self._merged(head) else "open"
        return PullRequest(branch, self._url(branch), branch, state, head)

    def _merged(self, head: str) -> bool:
        base = self.settings.base_branch or self.default_branch()
        result = self.git("merge-base", "--is-ancestor", head, f"refs/heads/{base}", check=False)
        return result.returncode == 0

    def _url(self, branch: str) -> str:
        return f"{self.path.resolve().as_uri()}#{branch}"

    def _identity(self) -> dict[str, str]:
        name, email = self.settings.author_name, self.settings.author_email
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }


# Shared by the REST providers


class ApiProvider:
    """An HTTP client for one repository with bounded retries on rate limits and 5xx.

    Subclasses set ``host`` and ``default_url``, build the headers, and say in ``retry_wait``
    which responses are worth a retry and how long to wait first.
    """

    host = ""
    default_url = ""
    first_backoff_seconds = 1.0

    def __init__(
        self,
        name: str,
        settings: GitOpsRepositorySettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.settings = settings
        self.base_url = settings.api_url or self.default_url
        self._sleep = sleep
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=self.headers(),
            timeout=settings.timeout_seconds,
            transport=transport,
        )

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        raise NotImplementedError

    def find_pull_request(self, branch: str) -> PullRequest | None:
        raise NotImplementedError

    def close(self) -> None:
        self.client.close()

    def post_pull_request(
        self, path: str, payload: dict[str, Any], branch: str, *, ok: tuple[int, ...], noun: str
    ) -> httpx.Response | PullRequest:
        """POST a new pull request and return the response, or what a timed-out POST created.

        A POST that timed out may still have created the pull request, so the open one from
        ``branch`` is looked up before the second and last attempt. ``noun`` names the request
        in errors, such as "merge request".
        """
        for attempt in range(2):
            try:
                return self.call("POST", path, json=payload, ok=ok, raise_timeouts=True)
            except httpx.TimeoutException:
                found = self.find_pull_request(branch)
                if found is not None:
                    logger.info("repository %s: the timed-out create made %s", self.name, found.url)
                    return found
                if attempt == 1:
                    raise RepositoryError(
                        f"repository {self.name!r}: creating the {noun} from {branch} "
                        "timed out twice", repository=self.name,
                    ) from None
        raise AssertionError("the loop always returns or raises")

    def call(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 204),
        raise_timeouts: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request and retry it after a rate limit or 5xx, up to ``max_retries``.

        A response whose status is in ``ok`` is returned; any other raises
        ``RepositoryError``. A timeout of a GET is retried. A timeout of a write raises
        ``httpx.TimeoutException`` when ``raise_timeouts`` is set, because the write may have
        happened and the caller looks it up before it tries again.
        """
        retries = self.settings.max_retries
        for attempt in range(retries + 1):
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                if raise_timeouts:
                    raise
                if method != "GET" or attempt == retries:
                    raise self._transport_error(method, path, "timed out") from None
                self._pause(self.first_backoff_seconds * 2**attempt, method, path, "timeout")
                continue
            except httpx.HTTPError as exc:
                raise self._transport_error(method, path, exc.__class__.__name__) from None

            if response.status_code in ok:
                return response
            wait = self.retry_wait(response, attempt)
            if wait is None:
                raise self.error(response)
            if attempt == retries or wait > self.settings.max_retry_wait_seconds:
                raise RepositoryError(
                    f"repository {self.name!r}: {self.host} answered {response.status_code} to "
                    f"{method} {path} and asks to wait {wait:.0f} s, after {attempt + 1} "
                    "attempts; try again later or raise max_retries or max_retry_wait_seconds",
                    repository=self.name,
                    status=response.status_code,
                )
            self._pause(wait, method, path, str(response.status_code))
        raise AssertionError("the retry loop always returns or raises")

    def error(self, response: httpx.Response) -> RepositoryError:
        """Return the error of a failed response, with what to check for 401, 403 and 404."""
        status = response.status_code
        request = response.request
        setting = f"actions.gitops.repositories.{self.name}"
        detail = _error_text(response)
        message = (
            f"repository {self.name!r}: {self.host} answered {status} to {request.method} "
            f"{request.url.path}" + (f": {detail}" if detail else "")
        )
        hints = {
            401: f"the token was rejected; check {setting}.token",
            403: f"the token lacks a permission; check the scopes of {setting}.token",
            404: f"check {setting}.repository and that the token can see it",
        }
        if status in hints:
            message += f"; {hints[status]}"
        return RepositoryError(message, repository=self.name, status=status)

    def _pause(self, wait: float, method: str, path: str, reason: str) -> None:
        logger.warning(
            "repository %s: %s %s got %s; retrying in %.1f s", self.name, method, path, reason,
            wait,
        )
        self._sleep(wait)

    def _transport_error(self, method: str, path: str, what: str) -> RepositoryError:
        return RepositoryError(
            f"repository {self.name!r}: {method} {self.host} {path} failed: {what}",
            repository=self.name,
        )


def seconds_until(epoch: str | None) -> float | None:
    """Return the seconds from now until a Unix time in a header, or None when absent."""
    if not epoch:
        return None
    try:
        return max(float(epoch) - datetime.now(UTC).timestamp(), 0.0)
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        errors = body.get("errors")
        if isinstance(errors, list):
            details = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
            message = f"{message} ({'; '.join(details)})" if details else message
        return str(message)[:300]
    return str(body)[:200]
