"""A fake GitHub REST API for one repository on 127.0.0.1.

It checks ``Authorization: Bearer TOKEN`` and the pinned ``X-GitHub-Api-Version``, keeps the
repository in memory (``FakeRepository``) and serves refs, contents and pull requests with
GitHub's statuses and error bodies: 422 "Reference already exists", 422 "A pull request already
exists for owner:branch.", 422 "No commits between", 409 on a stale blob sha, 404
``{"message": "Not Found"}`` and 401 "Bad credentials". Every response carries the
``x-ratelimit-*`` headers. Tests script 429 or 403 rate limits and 5xx with ``fail_next``, a
slow pull request create with ``stall_next_pull_create``, and merge with ``merge``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from fakes.gitrepo import FakeRepository, blob_sha
from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

TOKEN = "github_pat_fake_11AAAA0000"
OWNER, NAME = "acme", "fleet-config"
API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000


@dataclass
class ScriptedFailure:
    status: int
    retry_after: str | None = None
    exhausted: bool = False
    """Send ``x-ratelimit-remaining: 0`` with a reset a second from now, as a primary limit."""


@dataclass
class FakePull:
    number: int
    title: str
    body: str
    head: str
    base: str
    state: str = "open"
    merged: bool = False
    labels: list[str] = field(default_factory=list)
    head_sha: str = ""


class FakeGitHub(LoopbackFake):
    """The fake on a free port of 127.0.0.1, as a context manager; ``url`` is the API base."""

    server_name = "the fake GitHub"

    def __init__(self, files: dict[str, str]) -> None:
        self.repo = FakeRepository.with_files(files)
        self.pulls: dict[int, FakePull] = {}
        self.requests: list[tuple[str, str]] = []
        """Every authenticated request as (method, path)."""
        self.failures: list[ScriptedFailure] = []
        self.pull_create_stalls: list[float] = []
        self.used = 0
        self._numbers = itertools.count(1)
        self.app = self._build_app()

    @property
    def url(self) -> str:
        return self.base_url

    def repository_options(self, **overrides: Any) -> dict[str, Any]:
        """Return ``actions.gitops.repositories`` options aimed at this fake."""
        options = {
            "provider": "github",
            "api_url": self.url,
            "repository": f"{OWNER}/{NAME}",
            "token": TOKEN,
            "max_retry_wait_seconds": 5,
        }
        return {**options, **overrides}

    # Scripting and reading

    def fail_next(
        self, status: int, count: int = 1, *, retry_after: str | None = None,
        exhausted: bool = False,
    ) -> None:
        self.failures.extend(ScriptedFailure(status, retry_after, exhausted) for _ in range(count))

    def stall_next_pull_create(self, seconds: float) -> None:
        """Store the next pull request, then wait ``seconds`` before the response."""
        self.pull_create_stalls.append(seconds)

    def merge(self, number: int) -> None:
        pull = self.pulls[number]
        self.repo.merge(pull.head, pull.base)
        pull.state, pull.merged = "closed", True

    def open_pulls(self) -> list[FakePull]:
        return [pull for pull in self.pulls.values() if pull.state == "open"]

    def paths(self, method: str | None = None) -> list[str]:
        return [path for verb, path in self.requests if method is None or verb == method]

    # The application

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        app.middleware("http")(self._gate)
        prefix = f"/repos/{OWNER}/{NAME}"

        @app.get(prefix)
        async def repository() -> Response:
            return JSONResponse({
                "full_name": f"{OWNER}/{NAME}",
                "default_branch": self.repo.default_branch,
                "html_url": f"{self.url}/{OWNER}/{NAME}",
            })

        @app.get(prefix + "/git/ref/heads/{branch:path}")
        async def get_ref(branch: str) -> Response:
            sha = self.repo.branches.get(branch)
            if sha is None:
                return _error(404, "Not Found")
            return JSONResponse(self._ref(branch, sha))

        @app.post(prefix + "/git/refs")
        async def create_ref(request: Request) -> Response:
            body = await request.json()
            ref, sha = str(body.get("ref", "")), str(body.get("sha", ""))
            if not ref.startswith("refs/heads/") or ref.count("/") < 2:
                return _error(422, "Reference name is invalid")
            branch = ref.removeprefix("refs/heads/")
            if sha not in self.repo.commits:
                return _error(422, "Object does not exist")
            with self.repo.lock:
                if branch in self.repo.branches:
                    return _error(422, "Reference already exists")
                self.repo.branches[branch] = sha
            return JSONResponse(self._ref(branch, sha), status_code=201)

        @app.delete(prefix + "/git/refs/heads/{branch:path}")
        async def delete_ref(branch: str) -> Response:
            if self.repo.branches.pop(branch, None) is None:
                return _error(422, "Reference does not exist")
            return Response(status_code=204)

        @app.get(prefix + "/contents/{path:path}")
        async def get_contents(path: str, ref: str | None = None) -> Response:
            text = self.repo.file(ref or self.repo.default_branch, path)
            if text is None:
                return _error(404, "Not Found")
            return JSONResponse(self._content(path, text))

        @app.put(prefix + "/contents/{path:path}")
        async def put_contents(path: str, request: Request) -> Response:
            body = await request.json()
            return self._put_contents(path, body)

        @app.get(prefix + "/pulls")
        async def list_pulls(head: str | None = None, state: str = "open") -> Response:
            found = [
                self._pull_json(pull)
                for pull in self.pulls.values()
                if (state == "all" or pull.state == state)
                and (head is None or head == f"{OWNER}:{pull.head}")
            ]
            return JSONResponse(found)

        @app.post(prefix + "/pulls")
        async def create_pull(request: Request) -> Response:
            body = await request.json()
            return await self._create_pull(body)

        @app.get(prefix + "/pulls/{number}")
        async def get_pull(number: int) -> Response:
            pull = self.pulls.get(number)
            if pull is None:
                return _error(404, "Not Found")
            return JSONResponse(self._pull_json(pull))

        @app.patch(prefix + "/pulls/{number}")
        async def update_pull(number: int, request: Request) -> Response:
            pull = self.pulls.get(number)
            if pull is None:
                return _error(404, "Not Found")
            body = await request.json()
            if body.get("state") in ("open", "closed") and not pull.merged:
                pull.state = body["state"]
            return JSONResponse(self._pull_json(pull))

        @app.post(prefix + "/issues/{number}/labels")
        async def add_labels(number: int, request: Request) -> Response:
            pull = self.pulls.get(number)
            if pull is None:
                return _error(404, "Not Found")
            body = await request.json()
            for label in body.get("labels", []):
                if label not in pull.labels:
                    pull.labels.append(label)
            return JSONResponse([{"name": label} for label in pull.labels])

        return app

    async def _gate(self, request: Request, call_next: Any) -> Response:
        """Check the token and API version, play scripted failures and add rate-limit headers."""
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._with_limits(_error(401, "Bad credentials"))
        if request.headers.get("X-GitHub-Api-Version", API_VERSION) != API_VERSION:
            return self._with_limits(_error(400, "The version is not supported."))
        self.requests.append((request.method, request.url.path))
        self.used += 1
        if self.failures:
            failure = self.failures.pop(0)
            response = _scripted(failure)
            return self._with_limits(response, exhausted=failure.exhausted)
        response: Response = await call_next(request)
        return self._with_limits(response)

    def _with_limits(self, response: Response, *, exhausted: bool = False) -> Response:
        remaining = 0 if exhausted else max(RATE_LIMIT - self.used, 0)
        reset = int(time.time()) + (1 if exhausted else 3600)
        response.headers["x-ratelimit-limit"] = str(RATE_LIMIT)
        response.headers["x-ratelimit-remaining"] = str(remaining)
        response.headers["x-ratelimit-used"] = str(self.used)
        response.headers["x-ratelimit-reset"] = str(reset)
        response.headers["x-ratelimit-resource"] = "core"
        return response

    def _put_contents(self, path: str, body: dict[str, Any]) -> Response:
        branch = str(body.get("branch") or self.repo.default_branch)
        for required in ("message", "content"):
            if not body.get(required):
                return _error(422, f'Invalid request.\n\n"{required}" wasn\'t supplied.')
        with self.repo.lock:
            if branch not in self.repo.branches:
                return _error(404, f"Branch {branch} not found")
            current = self.repo.file(branch, path)
            if current is not None and not body.get("sha"):
                return _error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            if current is not None and body["sha"] != blob_sha(current):
                return _error(409, f"{path} does not match {body['sha']}")
            text = base64.b64decode(body["content"]).decode()
            author = (body.get("committer") or {}).get("email", "")
            sha = self.repo.commit_file(branch, path, text, str(body["message"]), author)
        payload = {"content": self._content(path, text), "commit": {"sha": sha}}
        return JSONResponse(payload, status_code=200 if current is not None else 201)

    async def _create_pull(self, body: dict[str, Any]) -> Response:
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        head = head.split(":", 1)[-1]
        if head not in self.repo.branches or base not in self.repo.branches:
            field = "head" if head not in self.repo.branches else "base"
            return _validation(
                {"resource": "PullRequest", "field": field, "code": "invalid"}
            )
        if not body.get("title"):
            return _validation({"resource": "PullRequest", "field": "title", "code": "missing"})
        with self.repo.lock:
            if any(p.head == head and p.base == base for p in self.open_pulls()):
                return _validation({
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"A pull request already exists for {OWNER}:{head}.",
                })
            tip = self.repo.branches[head]
            if self.repo.is_ancestor(tip, self.repo.branches[base]):
                return _validation({
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"No commits between {base} and {head}",
                })
            number = next(self._numbers)
            pull = FakePull(number, body["title"], str(body.get("body") or ""), head, base,
                            head_sha=tip)
            self.pulls[number] = pull
        if self.pull_create_stalls:
            await asyncio.sleep(self.pull_create_stalls.pop(0))
        return JSONResponse(self._pull_json(pull), status_code=201)

    def _ref(self, branch: str, sha: str) -> dict[str, Any]:
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_{sha[:12]}",
            "url": f"{self.url}/repos/{OWNER}/{NAME}/git/refs/heads/{branch}",
            "object": {"sha": sha, "type": "commit", "url": f"{self.url}/commits/{sha}"},
        }

    def _content(self, path: str, text: str) -> dict[str, Any]:
        return {
            "type": "file",
            "encoding": "base64",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "size": len(text.encode()),
            "content": base64.encodebytes(text.encode()).decode(),
            "sha": blob_sha(text),
        }

    def _pull_json(self, pull: FakePull) -> dict[str, Any]:
        tip = self.repo.branches.get(pull.head, pull.head_sha)
        return {
            "number": pull.number,
            "html_url": f"{self.url}/{OWNER}/{NAME}/pull/{pull.number}",
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "merged": pull.merged,
            "merged_at": "2026-01-01T00:00:00Z" if pull.merged else None,
            "head": {"ref": pull.head, "sha": tip, "label": f"{OWNER}:{pull.head}"},
            "base": {"ref": pull.base},
            "labels": [{"name": label} for label in pull.labels],
        }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "documentation_url": DOCS}, status_code=status)


def _validation(error: dict[str, str]) -> JSONResponse:
    body = {"message": "Validation Failed", "errors": [error], "documentation_url": DOCS}
    return JSONResponse(body, status_code=422)


def _scripted(failure: ScriptedFailure) -> JSONResponse:
    if failure.status in (403, 429):
        message = (
            "API rate limit exceeded" if failure.exhausted
            else "You have exceeded a secondary rate limit."
        )
        response = _error(failure.status, message)
    else:
        response = _error(failure.status, "Server Error")
    if failure.retry_after is not None:
        response.headers["retry-after"] = failure.retry_after
    return response
