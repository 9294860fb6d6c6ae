"""A fake GitLab REST API v4 for one project on 127.0.0.1.

It checks ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``), takes the project as its numeric id
or URL-encoded path, keeps the repository in memory (``FakeRepository``) and serves branches,
files, commits with actions and merge requests with GitLab's statuses and bodies: 409
``{"message": ["Another open merge request already exists for this source branch: !<iid>"]}``,
400 for an existing branch or a stale ``last_commit_id``, 404 ``{"message": "404 ... Not
Found"}`` and 401 ``{"message": "401 Unauthorized"}``. Every response carries the
``RateLimit-*`` headers; a scripted 429 adds ``Retry-After`` and the body ``Retry later``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from fakes.gitrepo import FakeRepository, blob_sha
from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

TOKEN = "glpat-fake-3c9d0000"
PROJECT_ID = 42
PROJECT_PATH = "platform/fleet-config"
RATE_LIMIT = 2000
PROJECT_IN_PATH = re.compile(r"^/api/v4/projects/([^/]+)(/.*)?$")


@dataclass
class ScriptedFailure:
    status: int
    retry_after: str | None = None


@dataclass
class FakeMergeRequest:
    iid: int
    title: str
    description: str
    source_branch: str
    target_branch: str
    labels: list[str]
    state: str = "opened"
    sha: str = ""


class FakeGitLab(LoopbackFake):
    """The fake on a free port of 127.0.0.1, as a context manager; ``url`` is the API base."""

    server_name = "the fake GitLab"

    def __init__(self, files: dict[str, str]) -> None:
        self.repo = FakeRepository.with_files(files)
        self.merge_requests: dict[int, FakeMergeRequest] = {}
        self.requests: list[tuple[str, str]] = []
        """Every authenticated request as (method, decoded path)."""
        self.failures: list[ScriptedFailure] = []
        self.mr_create_stalls: list[float] = []
        self.observed = 0
        self._iids = itertools.count(1)
        self.app = self._build_app()

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/v4"

    def repository_options(self, **overrides: Any) -> dict[str, Any]:
        options = {
            "provider": "gitlab",
            "api_url": self.url,
            "repository": PROJECT_PATH,
            "token": TOKEN,
            "max_retry_wait_seconds": 5,
        }
        return {**options, **overrides}

    def fail_next(self, status: int, count: int = 1, *, retry_after: str | None = None) -> None:
        self.failures.extend(ScriptedFailure(status, retry_after) for _ in range(count))

    def stall_next_mr_create(self, seconds: float) -> None:
        """Store the next merge request, then wait ``seconds`` before the response."""
        self.mr_create_stalls.append(seconds)

    def merge(self, iid: int) -> None:
        mr = self.merge_requests[iid]
        self.repo.merge(mr.source_branch, mr.target_branch)
        mr.state = "merged"

    def open_merge_requests(self) -> list[FakeMergeRequest]:
        return [mr for mr in self.merge_requests.values() if mr.state == "opened"]

    # The application

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        app.middleware("http")(self._gate)
        prefix = f"/api/v4/projects/{PROJECT_ID}"

        @app.get(prefix)
        async def project() -> Response:
            return JSONResponse({
                "id": PROJECT_ID,
                "path_with_namespace": PROJECT_PATH,
                "default_branch": self.repo.default_branch,
                "web_url": f"{self._web()}",
            })

        @app.get(prefix + "/repository/branches/{branch:path}")
        async def get_branch(branch: str) -> Response:
            sha = self.repo.branches.get(branch)
            if sha is None:
                return _error(404, "404 Branch Not Found")
            return JSONResponse({"name": branch, "commit": {"id": sha}, "merged": False})

        @app.delete(prefix + "/repository/branches/{branch:path}")
        async def delete_branch(branch: str) -> Response:
            if self.repo.branches.pop(branch, None) is None:
                return _error(404, "404 Branch Not Found")
            return Response(status_code=204)

        @app.get(prefix + "/repository/files/{file_path:path}")
        async def get_file(file_path: str, ref: str) -> Response:
            if ref not in self.repo.branches and ref not in self.repo.commits:
                return _error(404, "404 Commit Not Found")
            text = self.repo.file(ref, file_path)
            if text is None:
                return _error(404, "404 File Not Found")
            return JSONResponse({
                "file_name": file_path.rsplit("/", 1)[-1],
                "file_path": file_path,
                "size": len(text.encode()),
                "encoding": "base64",
                "content": base64.b64encode(text.encode()).decode(),
                "ref": ref,
                "blob_id": blob_sha(text),
                "commit_id": self.repo.branches.get(ref, ref),
                "last_commit_id": self.repo.last_commit_of(ref, file_path),
            })

        @app.post(prefix + "/repository/commits")
        async def create_commit(request: Request) -> Response:
            return self._commit(await request.json())

        @app.get(prefix + "/merge_requests")
        async def list_mrs(source_branch: str | None = None, state: str = "all") -> Response:
            found = [
                self._mr_json(mr)
                for mr in self.merge_requests.values()
                if (state == "all" or mr.state == state)
                and (source_branch is None or mr.source_branch == source_branch)
            ]
            return JSONResponse(found)

        @app.post(prefix + "/merge_requests")
        async def create_mr(request: Request) -> Response:
            return await self._create_mr(await request.json())

        @app.get(prefix + "/merge_requests/{iid}")
        async def get_mr(iid: int) -> Response:
            mr = self.merge_requests.get(iid)
            if mr is None:
                return _error(404, "404 Not found")
            return JSONResponse(self._mr_json(mr))

        @app.put(prefix + "/merge_requests/{iid}")
        async def update_mr(iid: int, request: Request) -> Response:
            mr = self.merge_requests.get(iid)
            if mr is None:
                return _error(404, "404 Not found")
            body = await request.json()
            if body.get("state_event") == "close" and mr.state == "opened":
                mr.state = "closed"
            return JSONResponse(self._mr_json(mr))

        return app

    async def _gate(self, request: Request, call_next: Any) -> Response:
        """Resolve the project path, check the token, play failures, add rate-limit headers."""
        raw = request.scope.get("raw_path", b"").decode() or request.url.path
        match = PROJECT_IN_PATH.match(raw.split("?", 1)[0])
        if match is not None:
            project = unquote(match.group(1))
            if project not in (str(PROJECT_ID), PROJECT_PATH):
                return self._with_limits(_error(404, "404 Project Not Found"))
            rest = unquote(match.group(2) or "")
            request.scope["path"] = f"/api/v4/projects/{PROJECT_ID}{rest}"

        token = request.headers.get("PRIVATE-TOKEN")
        if token != TOKEN and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._with_limits(_error(401, "401 Unauthorized"))
        self.requests.append((request.method, request.scope["path"]))
        self.observed += 1
        if self.failures:
            failure = self.failures.pop(0)
            if failure.status == 429:
                response: Response = PlainTextResponse("Retry later\n", status_code=429)
                response.headers["RateLimit-ResetTime"] = time.strftime(
                    "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 1)
                )
            else:
                response = _error(failure.status, "500 Internal Server Error")
            if failure.retry_after is not None:
                response.headers["Retry-After"] = failure.retry_after
            return self._with_limits(response)
        response = await call_next(request)
        return self._with_limits(response)

    def _with_limits(self, response: Response) -> Response:
        response.headers["RateLimit-Name"] = "throttle_authenticated_api"
        response.headers["RateLimit-Limit"] = str(RATE_LIMIT)
        response.headers["RateLimit-Observed"] = str(self.observed)
        response.headers["RateLimit-Remaining"] = str(max(RATE_LIMIT - self.observed, 0))
        response.headers["RateLimit-Reset"] = str(int(time.time()) + 60)
        return response

    def _commit(self, body: dict[str, Any]) -> Response:
        branch = str(body.get("branch") or "")
        start = body.get("start_branch")
        if not branch or not body.get("commit_message") or not body.get("actions"):
            return _error(400, "branch, commit_message, actions are missing")
        with self.repo.lock:
            if start is not None:
                if branch in self.repo.branches:
                    return _error(400, f"A branch called '{branch}' already exists.")
                if start not in self.repo.branches:
                    return _error(400, f"Invalid reference name: {start}")
                self.repo.branches[branch] = self.repo.branches[start]
            elif branch not in self.repo.branches:
                return _error(400, "You can only create or edit files when you are on a branch")
            files = dict(self.repo.commits[self.repo.branches[branch]].files)
            for action in body["actions"]:
                problem = self._apply_action(branch, files, action)
                if problem is not None:
                    if start is not None:
                        del self.repo.branches[branch]
                    return _error(400, problem)
            head = self.repo.branches[branch]
            author = str(body.get("author_email") or "")
            commit = self.repo.new_commit(files, (head,), str(body["commit_message"]), author)
            self.repo.branches[branch] = commit.sha
        return JSONResponse(
            {
                "id": commit.sha,
                "short_id": commit.sha[:8],
                "title": commit.message.splitlines()[0],
                "message": commit.message,
                "web_url": f"{self._web()}/-/commit/{commit.sha}",
            },
            status_code=201,
        )

    def _apply_action(
        self, branch: str, files: dict[str, str], action: dict[str, Any]
    ) -> str | None:
        kind, path = action.get("action"), str(action.get("file_path") or "")
        if kind not in ("create", "update"):
            return f"the fake does not support action {kind}"
        if kind == "update" and path not in files:
            return "A file with this name doesn't exist"
        if kind == "create" and path in files:
            return "A file with this name already exists"
        last = action.get("last_commit_id")
        if kind == "update" and last and last != self.repo.last_commit_of(branch, path):
            return (
                "You are attempting to update a file that has changed since you started "
                "editing it."
            )
        content = str(action.get("content") or "")
        if action.get("encoding") == "base64":
            content = base64.b64decode(content).decode()
        files[path] = content
        return None

    async def _create_mr(self, body: dict[str, Any]) -> Response:
        source, target = str(body.get("source_branch", "")), str(body.get("target_branch", ""))
        if not body.get("title"):
            return _error(400, "title is missing")
        if source not in self.repo.branches or target not in self.repo.branches:
            return JSONResponse({"message": {"source_branch": ["is invalid"]}}, status_code=400)
        with self.repo.lock:
            duplicate = next(
                (mr for mr in self.open_merge_requests() if mr.source_branch == source), None
            )
            if duplicate is not None:
                message = (
                    "Another open merge request already exists for this source branch: "
                    f"!{duplicate.iid}"
                )
                return JSONResponse({"message": [message]}, status_code=409)
            labels = [label for label in str(body.get("labels") or "").split(",") if label]
            mr = FakeMergeRequest(
                next(self._iids), str(body["title"]), str(body.get("description") or ""),
                source, target, labels, sha=self.repo.branches[source],
            )
            self.merge_requests[mr.iid] = mr
        if self.mr_create_stalls:
            await asyncio.sleep(self.mr_create_stalls.pop(0))
        return JSONResponse(self._mr_json(mr), status_code=201)

    def _mr_json(self, mr: FakeMergeRequest) -> dict[str, Any]:
        return {
            "id": 1000 + mr.iid,
            "iid": mr.iid,
            "project_id": PROJECT_ID,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "source_branch": mr.source_branch,
            "target_branch": mr.target_branch,
            "labels": mr.labels,
            "sha": self.repo.branches.get(mr.source_branch, mr.sha),
            "web_url": f"{self._web()}/-/merge_requests/{mr.iid}",
        }

    def _web(self) -> str:
        return f"{self.base_url}/{PROJECT_PATH}"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)
