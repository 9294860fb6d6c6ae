"""The gitops.pull_request action against the fake GitHub."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes.github import FakeGitHub
from gitops_samples import (
    PROFILE,
    PROFILE_PATH,
    TFVARS,
    TFVARS_PATH,
    make_context,
    repo_options,
    resize_request,
)

from costwarden.actions.github import GitHubProvider
from costwarden.actions.gitops import PullRequestAction
from costwarden.config import GitOpsRepositorySettings
from costwarden.domain.governance import ActionRequest
from costwarden.errors import RepositoryError, StaleStateError


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub({PROFILE_PATH: PROFILE, TFVARS_PATH: TFVARS}) as fake:
        yield fake


def context_for(github: FakeGitHub, sleeps: list[float] | None = None, **overrides: Any):  # type: ignore[no-untyped-def]
    options = repo_options(github.repository_options(**overrides))
    return make_context({"fleet": options}, [] if sleeps is None else sleeps)


def test_apply_opens_pull_request(github: FakeGitHub) -> None:
    outcome = PullRequestAction().apply(resize_request(), context_for(github))

    [pull] = github.open_pulls()
    assert outcome.links["pull_request"].endswith(f"/pull/{pull.number}")
    assert pull.base == "main"
    assert pull.head.startswith("costwarden/rec-101-")
    assert pull.labels == ["costwarden"]
    assert "812.40 USD per month" in pull.body
    assert "p95 CPU: 27 %" in pull.body
    assert "recommendations/rec-101" in pull.body
    changed = github.repo.file(pull.head, PROFILE_PATH)
    assert changed == PROFILE.replace("size: 6 ", "size: 4 ")


def test_apply_twice_opens_one_pull(github: FakeGitHub) -> None:
    context = context_for(github)
    first = PullRequestAction().apply(resize_request(), context)

    second = PullRequestAction().apply(resize_request(), context)

    assert len(github.pulls) == 1
    assert not second.changed
    assert second.links == first.links
    assert len(github.paths("PUT")) == 1


def test_duplicate_422_returns_open_pull(github: FakeGitHub) -> None:
    settings = GitOpsRepositorySettings.model_validate(github.repository_options())
    provider = GitHubProvider("fleet", settings)
    github.repo.branches["topic"] = github.repo.commit_file("main", "x.txt", "x\n", "x")
    github.repo.branches["main"] = github.repo.commits[github.repo.branches["topic"]].parents[0]

    first = provider.open_pull_request("topic", "main", "Topic", "", [])
    second = provider.open_pull_request("topic", "main", "Topic", "", [])

    assert second == first
    assert len(github.pulls) == 1
    provider.close()


def test_timed_out_create_is_found(github: FakeGitHub) -> None:
    github.stall_next_pull_create(3.0)

    outcome = PullRequestAction().apply(resize_request(), context_for(github, timeout_seconds=1.0))

    assert len(github.pulls) == 1
    assert outcome.links["pull_request"].endswith("/pull/1")
    assert github.paths("POST").count("/repos/acme/fleet-config/pulls") == 1


def test_stale_value_changes_nothing(github: FakeGitHub) -> None:
    github.repo.commit_file("main", PROFILE_PATH, PROFILE.replace("size: 6 ", "size: 8 "), "bump")

    with pytest.raises(StaleStateError, match="size = 8"):
        PullRequestAction().apply(resize_request(), context_for(github))

    assert github.pulls == {}
    assert list(github.repo.branches) == ["main"]


def test_terraform_value_keeps_comment(github: FakeGitHub) -> None:
    files = {"terraform": {"path": "terraform/{cluster}.tfvars",
                           "pool_key": "machine_pools[name={pool}].{field}",
                           "pool_fields": {"size": "count"}}}
    context = make_context({"fleet": github.repository_options(files=files)}, [])

    PullRequestAction().apply(resize_request(), context)

    [pull] = github.open_pulls()
    changed = github.repo.file(pull.head, TFVARS_PATH)
    assert changed == TFVARS.replace("count         = 6 #", "count         = 4 #")


def test_rate_limit_429_is_retried(github: FakeGitHub) -> None:
    sleeps: list[float] = []
    github.fail_next(429, retry_after="2")

    PullRequestAction().apply(resize_request(), context_for(github, sleeps))

    assert sleeps == [2.0]
    assert len(github.pulls) == 1


def test_exhausted_403_waits_for_reset(github: FakeGitHub) -> None:
    sleeps: list[float] = []
    github.fail_next(403, exhausted=True)

    PullRequestAction().apply(resize_request(), context_for(github, sleeps))

    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 2
    assert len(github.pulls) == 1


def test_long_retry_after_fails(github: FakeGitHub) -> None:
    github.fail_next(429, retry_after="600")

    with pytest.raises(RepositoryError, match="asks to wait 600 s") as caught:
        PullRequestAction().apply(resize_request(), context_for(github))

    assert caught.value.status == 429


def test_server_errors_are_retried(github: FakeGitHub) -> None:
    sleeps: list[float] = []
    github.fail_next(502, count=2, retry_after="0")

    PullRequestAction().apply(resize_request(), context_for(github, sleeps))

    assert sleeps == [0.0, 0.0]


def test_bad_token_names_setting(github: FakeGitHub) -> None:
    with pytest.raises(RepositoryError, match=r"actions\.gitops\.repositories\.fleet\.token"):
        PullRequestAction().apply(resize_request(), context_for(github, token="wrong"))


def test_rollback_closes_open_pull(github: FakeGitHub) -> None:
    context = context_for(github)
    request = resize_request()
    applied = PullRequestAction().apply(request, context)

    outcome = PullRequestAction().rollback(request, applied.undo, context)

    assert github.pulls[1].state == "closed"
    assert list(github.repo.branches) == ["main"]
    assert outcome.links["pull_request"] == applied.links["pull_request"]


def test_rollback_of_merged_reverts(github: FakeGitHub) -> None:
    context = context_for(github)
    request: ActionRequest = resize_request()
    applied = PullRequestAction().apply(request, context)
    github.merge(1)

    outcome = PullRequestAction().rollback(request, applied.undo, context)

    revert = github.pulls[2]
    assert revert.state == "open"
    assert revert.head.startswith("costwarden/revert-rec-101-")
    assert applied.links["pull_request"] in revert.body
    assert github.repo.file(revert.head, PROFILE_PATH) == PROFILE
    assert outcome.links["revert_pull_request"].endswith("/pull/2")

    again = PullRequestAction().rollback(request, applied.undo, context)
    assert not again.changed
    assert len(github.pulls) == 2
