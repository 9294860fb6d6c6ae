"""An in-memory git repository for the fake GitHub and GitLab: branches, commits and file texts.

Commit ids are random 40-hex strings; blob ids are git's real blob hashes, so a test can check
them with ``git hash-object``.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field


def blob_sha(text: str) -> str:
    """Return git's blob id of a file's text."""
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class FakeCommit:
    sha: str
    files: dict[str, str]
    parents: tuple[str, ...]
    message: str
    author: str = ""


@dataclass
class FakeRepository:
    """Branches by name pointing at commits; each commit holds every file's text."""

    default_branch: str = "main"
    commits: dict[str, FakeCommit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def with_files(cls, files: dict[str, str], branch: str = "main") -> FakeRepository:
        repo = cls(default_branch=branch)
        first = repo.new_commit(dict(files), (), "Initial commit")
        repo.branches[branch] = first.sha
        return repo

    def new_commit(
        self, files: dict[str, str], parents: tuple[str, ...], message: str, author: str = ""
    ) -> FakeCommit:
        sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        commit = FakeCommit(sha, files, parents, message, author)
        self.commits[commit.sha] = commit
        return commit

    def file(self, ref: str, path: str) -> str | None:
        """Return a file's text at a branch or commit, or None."""
        sha = self.branches.get(ref, ref)
        commit = self.commits.get(sha)
        return None if commit is None else commit.files.get(path)

    def last_commit_of(self, ref: str, path: str) -> str:
        """Return the newest commit on ``ref`` that changed ``path``."""
        sha = self.branches.get(ref, ref)
        text = self.commits[sha].files.get(path)
        while True:
            commit = self.commits[sha]
            if not commit.parents:
                return sha
            parent = self.commits[commit.parents[0]]
            if parent.files.get(path) != text:
                return sha
            sha = parent.sha

    def commit_file(self, branch: str, path: str, text: str, message: str, author: str = "") -> str:
        with self.lock:
            head = self.commits[self.branches[branch]]
            commit = self.new_commit({**head.files, path: text}, (head.sha,), message, author)
            self.branches[branch] = commit.sha
            return commit.sha

    def merge(self, source: str, target: str) -> str:
        """Merge ``source`` into ``target`` with a merge commit that takes the source's files."""
        with self.lock:
            head = self.branches[target]
            tip = self.branches[source]
            files = {**self.commits[head].files, **self.commits[tip].files}
            commit = self.new_commit(files, (head, tip), f"Merge {source} into {target}")
            self.branches[target] = commit.sha
            return commit.sha

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        pending = [sha]
        seen = set()
        while pending:
            current = pending.pop()
            if current == ancestor:
                return True
            if current in seen:
                continue
            seen.add(current)
            pending.extend(self.commits[current].parents)
        return False
