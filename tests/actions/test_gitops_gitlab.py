"""The gitops.pull_request action against the fake GitLab."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes.gitlab import FakeGitLab
from gitops_samples import PROFILE, PROFILE_PATH, make_context, repo_options, resize_request

from costwarden.actions.gitlab import GitLabProvider
from costwarden.actions.gitops import PullRequestAction
from costwarden.config import GitOpsRepositorySettings
from costwarden.errors import RepositoryError, StaleStateError


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab({PROFILE_PATH: PROFILE}) as fake:
        yield fake


def context_for(gitlab: FakeGitLab, sleeps: list[float] | None = None, **overrides: Any):  # type: ignore[no-untyped-def]
    options = repo_options(gitlab.repository_options(**overrides))
    return make_context({"fleet": options}, [] if sleeps is None else sleeps)


def test_apply_opens_merge_request(gitlab: FakeGitLab) -> None:
    outcome = PullRequestAction().apply(resize_request(), context_for(gitlab))

    [mr] = gitlab.open_merge_requests()
    assert outcome.links["pull_request"].endswith(f"/-/merge_requests/{mr.iid}")
    assert mr.target_branch == "main"
    assert mr.labels == ["costwarden"]
    assert "812.40 USD per month" in mr.description
    assert gitlab.repo.file(mr.source_branch, PROFILE_PATH) == PROFILE.replace(
        "size: 6 ", "size: 4 "
    )


def test_numeric_project_id_works(gitlab: FakeGitLab) -> None:
    PullRequestAction().apply(resize_request(), context_for(gitlab, repository="42"))

    assert len(gitlab.merge_requests) == 1


def test_apply_twice_opens_one_mr(gitlab: FakeGitLab) -> None:
    context = context_for(gitlab)
    PullRequestAction().apply(resize_request(), context)

    second = PullRequestAction().apply(resize_request(), context)

    assert not second.changed
    assert len(gitlab.merge_requests) == 1


def test_duplicate_409_returns_open_mr(gitlab: FakeGitLab) -> None:
    settings = GitOpsRepositorySettings.model_validate(gitlab.repository_options())
    provider = GitLabProvider("fleet", settings)
    gitlab.repo.branches["topic"] = gitlab.repo.branches["main"]
    gitlab.repo.commit_file("topic", "x.txt", "x\n", "x")

    first = provider.open_pull_request("topic", "main", "Topic", "", [])
    second = provider.open_pull_request("topic", "main", "Topic", "", [])

    assert second == first
    assert len(gitlab.merge_requests) == 1
    provider.close()


def test_timed_out_create_is_found(gitlab: FakeGitLab) -> None:
    gitlab.stall_next_mr_create(3.0)

    outcome = PullRequestAction().apply(resize_request(), context_for(gitlab, timeout_seconds=1.0))

    assert len(gitlab.merge_requests) == 1
    assert outcome.links["pull_request"].endswith("/-/merge_requests/1")


def test_stale_value_changes_nothing(gitlab: FakeGitLab) -> None:
    gitlab.repo.commit_file("main", PROFILE_PATH, PROFILE.replace("size: 6 ", "size: 2 "), "x")

    with pytest.raises(StaleStateError, match="size = 2"):
        PullRequestAction().apply(resize_request(), context_for(gitlab))

    assert list(gitlab.repo.branches) == ["main"]


def test_rate_limit_429_is_retried(gitlab: FakeGitLab) -> None:
    sleeps: list[float] = []
    gitlab.fail_next(429, retry_after="1")

    PullRequestAction().apply(resize_request(), context_for(gitlab, sleeps))

    assert sleeps == [1.0]
    assert len(gitlab.merge_requests) == 1


def test_bad_token_names_setting(gitlab: FakeGitLab) -> None:
    with pytest.raises(RepositoryError, match="401") as caught:
        PullRequestAction().apply(resize_request(), context_for(gitlab, token="wrong"))

    assert "actions.gitops.repositories.fleet.token" in str(caught.value)


def test_rollback_closes_open_mr(gitlab: FakeGitLab) -> None:
    context = context_for(gitlab)
    request = resize_request()
    applied = PullRequestAction().apply(request, context)

    PullRequestAction().rollback(request, applied.undo, context)

    assert gitlab.merge_requests[1].state == "closed"
    assert list(gitlab.repo.branches) == ["main"]


def test_rollback_of_merged_reverts(gitlab: FakeGitLab) -> None:
    context = context_for(gitlab)
    request = resize_request()
    applied = PullRequestAction().apply(request, context)
    gitlab.merge(1)

    outcome = PullRequestAction().rollback(request, applied.undo, context)

    revert = gitlab.merge_requests[2]
    assert revert.source_branch.startswith("costwarden/revert-rec-101-")
    assert gitlab.repo.file(revert.source_branch, PROFILE_PATH) == PROFILE
    assert "revert" in outcome.summary
