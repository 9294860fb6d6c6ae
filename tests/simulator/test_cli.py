"""``costwarden palette-sim`` as a user runs it: a foreground process on a loopback port."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx


def test_palette_sim_serves_until_interrupted() -> None:
    command = [
        sys.executable,
        "-m",
        "costwarden",
        "palette-sim",
        "--port",
        "0",
        "--seed",
        "3",
        "--as-of",
        "2026-03-15T12:00:00Z",
        "--api-key",
        "cli-test-key",
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
        assert "API key: cli-test-key" in output

        url = match.group(0)
        response = _get_when_ready(url + "/v1/users/info", {"ApiKey": "cli-test-key"})
        assert response.status_code == 200
        assert httpx.get(url + "/v1/users/info", headers={"ApiKey": "other"}).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    assert process.returncode in (0, 130)


def _get_when_ready(url: str, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 15
    while True:
        try:
            return httpx.get(url, headers=headers)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
