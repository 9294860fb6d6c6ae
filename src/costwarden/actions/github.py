"""The GitHub provider of the gitops.pull_request action, over the REST API.

It pins ``X-GitHub-Api-Version: 2022-11-28`` and authenticates with ``Authorization: Bearer``
(a fine-grained token or an App installation token with contents and pull requests write).
A branch is a ref created from the base branch's commit; the file changes with one contents
``PUT`` that carries the blob sha read before, so a concurrent change gets 409 instead of being
overwritten. GitHub answers 422 both for a ref that exists and for a duplicate pull request,
and the provider reuses the existing one in both cases.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

import httpx

from costwarden.actions.gitops import (
    ApiProvider,
    PullRequest,
    PullRequestState,
    RepoFile,
    seconds_until,
)
from costwarden.errors import RepositoryError, StaleStateError

logger = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
SECONDARY_LIMIT_WAIT_SECONDS = 60.0
"""Wait after a secondary rate limit that names no time: GitHub asks for at least a minute."""


class GitHubProvider(ApiProvider):
    """Branches, contents and pull requests of one GitHub repository."""

    host = "GitHub"
    default_url = "https://api.github.com"

    def headers(self) -> dict[str, str]:
        assert self.settings.token is not None
        return {
            "Authorization": f"Bearer {self.settings.token.get_secret_value()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "costwarden",
        }

    @property
    def repo(self) -> str:
        return f"/repos/{self.settings.repository}"

    @property
    def owner(self) -> str:
        return self.settings.repository.split("/")[0]

    def retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Return the wait before a retry, or None when the response is final.

        GitHub signals rate limits with 429 or 403: ``retry-after`` wins, then
        ``x-ratelimit-reset`` when no requests remain, else a secondary limit's minute.
        """
        status = response.status_code
        headers = response.headers
        retry_after = headers.get("retry-after")
        if status >= 500:
            return float(retry_after) if retry_after else self.first_backoff_seconds * 2**attempt
        limited = status == 429 or (
            status == 403
            and (
                retry_after is not None
                or headers.get("x-ratelimit-remaining") == "0"
                or "rate limit" in response.text.lower()
            )
        )
        if not limited:
            return None
        if retry_after:
            return float(retry_after)
        if headers.get("x-ratelimit-remaining") == "0":
            reset = seconds_until(headers.get("x-ratelimit-reset"))
            if reset is not None:
                return reset
        return SECONDARY_LIMIT_WAIT_SECONDS * 2**attempt

    def default_branch(self) -> str:
        return str(self.call("GET", self.repo).json()["default_branch"])

    def branch_head(self, branch: str) -> str | None:
        response = self.call("GET", f"{self.repo}/git/ref/heads/{quote(branch)}", ok=(200, 404))
        if response.status_code == 404:
            return None
        return str(response.json()["object"]["sha"])

    def read_file(self, path: str, ref: str) -> RepoFile | None:
        response = self.call(
            "GET", f"{self.repo}/contents/{quote(path)}", params={"ref": ref}, ok=(200, 404)
        )
        if response.status_code == 404:
            return None
        body = response.json()
        if not isinstance(body, dict) or body.get("type") != "file":
            raise RepositoryError(
                f"repository {self.name!r}: {path} on {ref} is not a file",
                repository=self.name,
            )
        text = base64.b64decode(body["content"]).decode()
        return RepoFile(path, text, str(body["sha"]))

    def commit_file(
        self, branch: str, start: str | None, path: str, text: str, message: str,
        previous: RepoFile,
    ) -> str:
        if start is not None:
            self._create_branch(branch, start)
        body = {
            "message": message,
            "content": base64.b64encode(text.encode()).decode(),
            "branch": branch,
            "sha": previous.version,
            "committer": {"name": self.settings.author_name, "email": self.settings.author_email},
        }
        response = self.call(
            "PUT", f"{self.repo}/contents/{quote(path)}", json=body, ok=(200, 201, 409)
        )
        if response.status_code == 409:
            raise StaleStateError(
                f"repository {self.name!r}: {path} on {branch} changed while costwarden edited "
                "it (GitHub answered 409); apply again"
            )
        return str(response.json()["commit"]["sha"])

    def find_pull_request(self, branch: str) -> PullRequest | None:
        params = {"head": f"{self.owner}:{branch}", "state": "open", "per_page": "10"}
        pulls = self.call("GET", f"{self.repo}/pulls", params=params).json()
        return _pull(pulls[0]) if pulls else None

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, labels: list[str]
    ) -> PullRequest:
        payload = {
            "title": title,
            "head": branch,
            "base": base,
            "body": body,
            "draft": False,
            "maintainer_can_modify": True,
        }
        created = self.post_pull_request(
            f"{self.repo}/pulls", payload, branch, ok=(201, 422), noun="pull request"
        )
        if isinstance(created, PullRequest):
            return created
        if created.status_code == 201:
            pull = _pull(created.json())
            self._label(pull, labels)
            return pull
        return self._after_422(created, branch)

    def pull_request(self, number: str, head: str | None) -> PullRequest:
        return _pull(self.call("GET", f"{self.repo}/pulls/{number}").json())

    def close_pull_request(self, pull: PullRequest) -> None:
        self.call("PATCH", f"{self.repo}/pulls/{pull.number}", json={"state": "closed"})

    def delete_branch(self, branch: str) -> None:
        self.call("DELETE", f"{self.repo}/git/refs/heads/{quote(branch)}", ok=(204, 404, 422))

    def _create_branch(self, branch: str, start: str) -> None:
        sha = self.branch_head(start)
        if sha is None:
            raise RepositoryError(
                f"repository {self.name!r}: base branch {start} not found; check base_branch",
                repository=self.name,
            )
        body = {"ref": f"refs/heads/{branch}", "sha": sha}
        response = self.call("POST", f"{self.repo}/git/refs", json=body, ok=(201, 422))
        if response.status_code == 422 and "already exists" not in response.text:
            raise self.error(response)

    def _after_422(self, response: httpx.Response, branch: str) -> PullRequest:
        """Return the open pull request a 422 reports as a duplicate; raise for other 422s."""
        if "pull request already exists" not in response.text.lower():
            raise self.error(response)
        found = self.find_pull_request(branch)
        if found is None:
            raise RepositoryError(
                f"repository {self.name!r}: GitHub reports a pull request from {branch}, but "
                "the list of open pull requests does not show it; try again",
                repository=self.name,
                status=422,
            )
        logger.info("repository %s: reusing the open pull request %s", self.name, found.url)
        return found

    def _label(self, pull: PullRequest, labels: list[str]) -> None:
        if labels:
            path = f"{self.repo}/issues/{pull.number}/labels"
            self.call("POST", path, json={"labels": labels})


def _pull(data: dict[str, object]) -> PullRequest:
    state: PullRequestState = "open"
    if data.get("merged") or data.get("merged_at"):
        state = "merged"
    elif data.get("state") == "closed":
        state = "closed"
    head = data.get("head") or {}
    assert isinstance(head, dict)
    return PullRequest(
        number=str(data["number"]),
        url=str(data["html_url"]),
        branch=str(head.get("ref", "")),
        state=state,
        head=str(head["sha"]) if head.get("sha") else None,
    )
