"""The GitLab provider of the gitops.pull_request action, over the REST API v4.

It authenticates with ``PRIVATE-TOKEN``. One ``POST /repository/commits`` call with
``start_branch`` creates the branch and the commit together, and ``last_commit_id`` makes the
commit fail when the file changed after it was read. GitLab answers 409 to a second merge
request from the same source branch, naming the open one as ``!<iid>``, which the provider
then reuses.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import quote

import httpx

from costwarden.actions.gitops import (
    ApiProvider,
    PullRequest,
    PullRequestState,
    RepoFile,
    seconds_until,
)
from costwarden.errors import StaleStateError

logger = logging.getLogger(__name__)

DUPLICATE_MR = re.compile(r"!(\d+)")


class GitLabProvider(ApiProvider):
    """Branches, files, commits and merge requests of one GitLab project."""

    host = "GitLab"
    default_url = "https://gitlab.com/api/v4"

    def headers(self) -> dict[str, str]:
        assert self.settings.token is not None
        return {"PRIVATE-TOKEN": self.settings.token.get_secret_value(), "User-Agent": "costwarden"}

    @property
    def project(self) -> str:
        return f"/projects/{quote(self.settings.repository, safe='')}"

    def retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Return the wait before a retry after 429 or 5xx, or None when the response is final."""
        status = response.status_code
        if status != 429 and status < 500:
            return None
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            return float(retry_after)
        reset = seconds_until(response.headers.get("RateLimit-Reset"))
        if status == 429 and reset is not None:
            return reset
        return self.first_backoff_seconds * 2**attempt

    def default_branch(self) -> str:
        return str(self.call("GET", self.project).json()["default_branch"])

    def branch_head(self, branch: str) -> str | None:
        path = f"{self.project}/repository/branches/{quote(branch, safe='')}"
        response = self.call("GET", path, ok=(200, 404))
        if response.status_code == 404:
            return None
        return str(response.json()["commit"]["id"])

    def read_file(self, path: str, ref: str) -> RepoFile | None:
        url = f"{self.project}/repository/files/{quote(path, safe='')}"
        response = self.call("GET", url, params={"ref": ref}, ok=(200, 404))
        if response.status_code == 404:
            return None
        body = response.json()
        text = base64.b64decode(body["content"]).decode()
        return RepoFile(path, text, str(body["last_commit_id"]))

    def commit_file(
        self, branch: str, start: str | None, path: str, text: str, message: str,
        previous: RepoFile,
    ) -> str:
        body: dict[str, object] = {
            "branch": branch,
            "commit_message": message,
            "author_name": self.settings.author_name,
            "author_email": self.settings.author_email,
            "actions": [
                {
                    "action": "update",
                    "file_path": path,
                    "content": text,
                    "encoding": "text",
                    "last_commit_id": previous.version,
                }
            ],
        }
        if start is not None:
            body["start_branch"] = start
        path_url = f"{self.project}/repository/commits"
        response = self.call("POST", path_url, json=body, ok=(201, 400))
        if response.status_code == 400:
            if "changed since" in response.text:
                raise StaleStateError(
                    f"repository {self.name!r}: {path} changed on {start or branch} while "
                    "costwarden edited it; apply again"
                )
            raise self.error(response)
        return str(response.json()["id"])

    def find_pull_request(self, branch: str) -> PullRequest | None:
        params = {"source_branch": branch, "state": "opened"}
        found = self.call("GET", f"{self.project}/merge_requests", params=params).json()
        return _merge_request(found[0]) if found else None

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, labels: list[str]
    ) -> PullRequest:
        payload = {
            "source_branch": branch,
            "target_branch": base,
            "title": title,
            "description": body,
            "labels": ",".join(labels),
            "remove_source_branch": True,
        }
        created = self.post_pull_request(
            f"{self.project}/merge_requests", payload, branch, ok=(201, 409), noun="merge request"
        )
        if isinstance(created, PullRequest):
            return created
        if created.status_code == 201:
            return _merge_request(created.json())
        return self._after_409(created, branch)

    def pull_request(self, number: str, head: str | None) -> PullRequest:
        return _merge_request(self.call("GET", f"{self.project}/merge_requests/{number}").json())

    def close_pull_request(self, pull: PullRequest) -> None:
        path = f"{self.project}/merge_requests/{pull.number}"
        self.call("PUT", path, json={"state_event": "close"})

    def delete_branch(self, branch: str) -> None:
        path = f"{self.project}/repository/branches/{quote(branch, safe='')}"
        self.call("DELETE", path, ok=(204, 404))

    def _after_409(self, response: httpx.Response, branch: str) -> PullRequest:
        """Return the open merge request that a 409 names, from ``!<iid>`` or by branch."""
        match = DUPLICATE_MR.search(response.text)
        if match is not None:
            found = self.pull_request(match.group(1), None)
        else:
            found_or_none = self.find_pull_request(branch)
            if found_or_none is None:
                raise self.error(response)
            found = found_or_none
        logger.info("repository %s: reusing the open merge request %s", self.name, found.url)
        return found


def _merge_request(data: dict[str, object]) -> PullRequest:
    states: dict[object, PullRequestState] = {"merged": "merged", "closed": "closed"}
    state = states.get(data.get("state"), "open")
    sha = data.get("sha")
    return PullRequest(
        number=str(data["iid"]),
        url=str(data["web_url"]),
        branch=str(data.get("source_branch", "")),
        state=state,
        head=str(sha) if sha else None,
    )
