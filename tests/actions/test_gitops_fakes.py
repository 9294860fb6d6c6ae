"""The fake GitHub and GitLab speak the documented wire format."""

from __future__ import annotations

import base64

import httpx
from fakes.github import API_VERSION, FakeGitHub
from fakes.github import TOKEN as GITHUB_TOKEN
from fakes.gitlab import TOKEN as GITLAB_TOKEN
from fakes.gitlab import FakeGitLab
from fakes.gitrepo import blob_sha

GITHUB_HEADERS = {
    "Authorization": f"Bearer {GITHUB_TOKEN}",
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": API_VERSION,
}


def test_github_blob_sha_matches_git() -> None:
    assert blob_sha("hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_github_fake_refs_and_pulls() -> None:
    with FakeGitHub({"a.yaml": "size: 1\n"}) as fake, httpx.Client(
        base_url=f"{fake.url}/repos/acme/fleet-config", headers=GITHUB_HEADERS
    ) as client:
        main = client.get("/git/ref/heads/main")
        sha = main.json()["object"]["sha"]
        created = client.post("/git/refs", json={"ref": "refs/heads/topic", "sha": sha})
        again = client.post("/git/refs", json={"ref": "refs/heads/topic", "sha": sha})
        content = client.get("/contents/a.yaml", params={"ref": "topic"}).json()
        stale = client.put("/contents/a.yaml", json={
            "message": "m", "branch": "topic", "sha": "0" * 40,
            "content": base64.b64encode(b"size: 2\n").decode(),
        })
        updated = client.put("/contents/a.yaml", json={
            "message": "m", "branch": "topic", "sha": content["sha"],
            "content": base64.b64encode(b"size: 2\n").decode(),
        })
        pull = client.post("/pulls", json={"title": "t", "head": "topic", "base": "main"})
        duplicate = client.post("/pulls", json={"title": "t", "head": "topic", "base": "main"})
        listed = client.get("/pulls", params={"head": "acme:topic", "state": "open"})

    assert main.headers["x-ratelimit-limit"] == "5000"
    assert created.status_code == 201
    assert again.status_code == 422
    assert again.json()["message"] == "Reference already exists"
    assert content["sha"] == blob_sha("size: 1\n")
    assert stale.status_code == 409
    assert updated.status_code == 200
    assert pull.status_code == 201
    assert pull.json()["state"] == "open"
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["message"] == (
        "A pull request already exists for acme:topic."
    )
    assert [p["number"] for p in listed.json()] == [pull.json()["number"]]


def test_github_fake_rejects_bad_token() -> None:
    with FakeGitHub({}) as fake:
        response = httpx.get(f"{fake.url}/repos/acme/fleet-config", headers={
            "Authorization": "Bearer wrong"
        })

    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"


def test_github_fake_scripted_rate_limit() -> None:
    with FakeGitHub({}) as fake:
        fake.fail_next(403, exhausted=True)
        response = httpx.get(f"{fake.url}/repos/acme/fleet-config", headers=GITHUB_HEADERS)

    assert response.status_code == 403
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit" in response.json()["message"]


def test_gitlab_fake_commits_and_mrs() -> None:
    with FakeGitLab({"a.yaml": "size: 1\n"}) as fake, httpx.Client(
        base_url=f"{fake.url}/projects/platform%2Ffleet-config",
        headers={"PRIVATE-TOKEN": GITLAB_TOKEN},
    ) as client:
        file = client.get("/repository/files/a.yaml", params={"ref": "main"}).json()
        action = {"action": "update", "file_path": "a.yaml", "content": "size: 2\n",
                  "last_commit_id": file["last_commit_id"]}
        commit = client.post("/repository/commits", json={
            "branch": "topic", "start_branch": "main", "commit_message": "m", "actions": [action],
        })
        stale = client.post("/repository/commits", json={
            "branch": "topic", "commit_message": "m",
            "actions": [{**action, "last_commit_id": "0" * 40}],
        })
        mr = client.post("/merge_requests", json={
            "source_branch": "topic", "target_branch": "main", "title": "t",
        })
        duplicate = client.post("/merge_requests", json={
            "source_branch": "topic", "target_branch": "main", "title": "t",
        })
        fake.fail_next(429, retry_after="3")
        limited = client.get("/merge_requests")

    assert file["content"] == base64.b64encode(b"size: 1\n").decode()
    assert commit.status_code == 201
    assert stale.status_code == 400
    assert "changed since" in stale.json()["message"]
    assert mr.status_code == 201
    assert mr.json()["state"] == "opened"
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == [
        f"Another open merge request already exists for this source branch: !{mr.json()['iid']}"
    ]
    assert limited.status_code == 429
    assert limited.text == "Retry later\n"
    assert limited.headers["Retry-After"] == "3"
    assert limited.headers["RateLimit-Name"] == "throttle_authenticated_api"


def test_gitlab_fake_rejects_bad_token() -> None:
    with FakeGitLab({}) as fake:
        response = httpx.get(f"{fake.url}/projects/42", headers={"PRIVATE-TOKEN": "x"})

    assert response.status_code == 401
    assert response.json() == {"message": "401 Unauthorized"}
