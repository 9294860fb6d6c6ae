"""``costwarden palette-sim`` as a user runs it: a foreground process on a loopback port."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import yaml
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.errors import ConfigError


def test_palette_sim_serves_until_interrupted() -> None:
    with _palette_sim("--seed", "3", "--api-key", "cli-test-key") as (process, url, output):
        assert "API key: cli-test-key" in output

        response = _get_when_ready(url + "/v1/users/info", {"ApiKey": "cli-test-key"})
        assert response.status_code == 200
        assert httpx.get(url + "/v1/users/info", headers={"ApiKey": "other"}).status_code == 401

    assert process.returncode in (0, 130)


def test_palette_sim_serves_kubeconfigs() -> None:
    kube_url = "https://127.0.0.1:6443"
    options = ("--kubernetes-api-url", kube_url, "--kubernetes-token", "cli-kube-token")
    with _palette_sim(*options) as (_, url, output):
        assert f"Kubeconfigs point at {kube_url}" in output

        headers = {"ApiKey": "cli-test-key"}
        assert _get_when_ready(url + "/v1/users/info", headers).status_code == 200
        clusters = httpx.post(url + "/v1/dashboard/spectroclusters/search", headers=headers)
        uid = clusters.json()["items"][0]["metadata"]["uid"]
        response = httpx.get(url + f"/v1/spectroclusters/{uid}/assets/kubeconfig", headers=headers)

    assert response.status_code == 200
    config = yaml.safe_load(response.text)
    assert config["clusters"][0]["cluster"]["server"] == kube_url
    assert config["users"][0]["user"]["token"] == "cli-kube-token"


def test_palette_sim_rejects_kubernetes_url_without_scheme() -> None:
    result = CliRunner().invoke(
        app, ["palette-sim", "--port", "0", "--kubernetes-api-url", "127.0.0.1:6443"]
    )

    assert isinstance(result.exception, ConfigError)
    assert "--kubernetes-api-url '127.0.0.1:6443'" in str(result.exception)


@contextmanager
def _palette_sim(*options: str) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """Run ``palette-sim`` on a free port and yield the process, its URL and its startup output.

    The process gets SIGINT when the block ends, so ``returncode`` is set after it.
    """
    command = [
        sys.executable, "-m", "costwarden", "palette-sim", "--port", "0",
        "--as-of", "2026-03-15T12:00:00Z", "--api-key", "cli-test-key", *options,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline() if process.stdout else ""
            lines.append(line)
            if "Press Ctrl+C" in line or not line:
                break
        output = "".join(lines)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", output)
        assert match, output
        yield process, match.group(0), output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def _get_when_ready(url: str, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 15
    while True:
        try:
            return httpx.get(url, headers=headers)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
