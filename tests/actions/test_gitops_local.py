"""The gitops.pull_request action on a plain git repository on disk."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from gitops_samples import PROFILE, PROFILE_PATH, make_context, repo_options, resize_request

from costwarden.actions.gitops import PullRequestAction, branch_name
from costwarden.errors import StaleStateError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "fleet-config"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "clusters" / "prod-eu").mkdir(parents=True)
    (path / PROFILE_PATH).write_text(PROFILE)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "Add prod-eu")
    return path


@pytest.fixture
def context(repo: Path):  # type: ignore[no-untyped-def]
    return make_context({"fleet": repo_options({"provider": "local", "repository": str(repo)})}, [])


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


def test_apply_commits_to_one_branch(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    request = resize_request()

    outcome = PullRequestAction().apply(request, context)

    branch = branch_name("costwarden/", "rec-101", request.digest)
    assert outcome.changed
    assert outcome.undo["branch"] == branch
    assert outcome.before == {"size": 6}
    assert branch in branches(repo)
    changed = git(repo, "show", f"{branch}:{PROFILE_PATH}")
    assert changed == PROFILE.replace("size: 6 ", "size: 4 ").strip()
    assert "# scaled up for the Q3 launch" in changed
    assert git(repo, "log", "-1", "--format=%an", branch) == "costwarden"


def test_apply_leaves_worktree_alone(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    PullRequestAction().apply(resize_request(), context)

    assert git(repo, "branch", "--show-current") == "main"
    assert (repo / PROFILE_PATH).read_text() == PROFILE
    assert git(repo, "status", "--porcelain") == ""


def test_apply_twice_reuses_branch(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    request = resize_request()
    first = PullRequestAction().apply(request, context)

    second = PullRequestAction().apply(request, context)

    assert not second.changed
    assert second.links == first.links
    branch = first.undo["branch"]
    assert git(repo, "rev-list", "--count", f"main..{branch}") == "1"


def test_apply_rejects_stale_value(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StaleStateError, match="size = 6"):
        PullRequestAction().apply(resize_request(expected=5), context)

    assert branches(repo) == ["main"]


def test_apply_needs_expected_value(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StaleStateError, match="no expected value for size"):
        PullRequestAction().apply(resize_request(expected=None), context)


def test_dry_run_returns_diff_only(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    outcome = PullRequestAction().dry_run(resize_request(), context)

    diff = outcome.after["diff"]
    assert "-    size: 6        # scaled up for the Q3 launch" in diff
    assert "+    size: 4        # scaled up for the Q3 launch" in diff
    assert branches(repo) == ["main"]


def test_rollback_deletes_open_branch(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    request = resize_request()
    applied = PullRequestAction().apply(request, context)

    outcome = PullRequestAction().rollback(request, applied.undo, context)

    assert "deleted branch" in outcome.summary
    assert branches(repo) == ["main"]


def test_rollback_after_merge_reverts(repo: Path, context) -> None:  # type: ignore[no-untyped-def]
    request = resize_request()
    applied = PullRequestAction().apply(request, context)
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge", applied.undo["branch"])
    git(repo, "branch", "-q", "-D", applied.undo["branch"])

    outcome = PullRequestAction().rollback(request, applied.undo, context)

    revert = branch_name("costwarden/", "revert-rec-101", request.digest)
    assert "revert" in outcome.summary
    assert revert in branches(repo)
    assert "size: 6 " in git(repo, "show", f"{revert}:{PROFILE_PATH}")
    assert "size: 4 " in git(repo, "show", f"main:{PROFILE_PATH}")
