"""The real server: `moderation serve` under gunicorn, spoken to over HTTP on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def server_env(tmp_path, tiny_bundle, **extra) -> dict:
    env = {**os.environ, "MODERATION_INSTANCE_DIR": str(tmp_path), "MODERATION_MODEL_DIR": str(tiny_bundle), **extra}
    env.pop("MODERATION_DATABASE_URL", None)
    return env


@contextlib.contextmanager
def running_server(env: dict):
    """`moderation serve` with 2 workers on a free port, ready; stopped (SIGTERM) on exit."""
    moderation = str(BIN / "moderation")
    subprocess.run([moderation, "db", "upgrade"], env=env, check=True, capture_output=True)
    keys = {role: subprocess.run([moderation, "keys", "create", "--name", role, "--role", role], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip() for role in ("site", "moderator")}
    port = free_port()
    process = subprocess.Popen([moderation, "serve", "--port", str(port), "--workers", "2"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # workers load the model; a busy CI machine is slow
        while time.monotonic() < deadline:
            try:
                if call(base + "/readyz")[0] == 200:
                    break
            except OSError:  # refused, reset or timed out while the workers start
                pass
            time.sleep(0.2)
        else:
            pytest.fail("server did not become ready: " + process.stderr.read1(4000).decode(errors="replace"))
        yield base, keys
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stderr.close()


@pytest.fixture
def server(tmp_path, tiny_bundle):
    with running_server(server_env(tmp_path, tiny_bundle)) as running:
        yield running


def test_comment_round_trip_over_http(server):
    base, keys = server
    status, body = call(base + "/api/v1/comments", {"text": "Thanks for covering the flood defences.", "external_id": "e1"}, keys["site"])
    assert status == 201 and body["status"] in ("published", "pending", "rejected")
    assert call(base + "/api/v1/comments", {"text": "Thanks for covering the flood defences.", "external_id": "e1"}, keys["site"]) == (200, body)
    status, polled = call(base + f"/api/v1/comments/{body['id']}", key=keys["site"])
    assert status == 200 and polled["history"][0]["actor"] == "model"
    status, error = call(base + "/api/v1/queue", key=keys["site"])
    assert status == 403 and error["error"]["code"] == "forbidden"
    status, ready = call(base + "/readyz")
    assert status == 200 and ready["model_version"] == body["model_version"]


def test_every_worker_switches_to_a_promoted_model_without_a_restart_or_a_failed_request(tmp_path, tiny_bundle):
    env = server_env(tmp_path, tiny_bundle, MODERATION_MODEL_CHECK_SECONDS="0.2")
    with running_server(env) as (base, keys):
        new = tmp_path / "new-bundle"
        shutil.copytree(tiny_bundle, new)
        manifest = json.loads((new / "manifest.json").read_text())
        manifest["version"] = "next-version"
        (new / "manifest.json").write_text(json.dumps(manifest))
        old_version = call(base + "/readyz")[1]["model_version"]
        for command in (["models", "add", str(new)], ["models", "promote", "next-version"]):
            subprocess.run([str(BIN / "moderation"), *command], env=env, check=True, capture_output=True)
        answers, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline and answers[-20:] != ["next-version"] * 20:  # 20 in a row: both workers switched
            status, body = call(base + "/api/v1/comments", {"text": f"Comment {len(answers)} on the ferry timetable."}, keys["site"])
            assert status == 201, body  # not one request fails during the switch
            answers.append(body["model_version"])
        assert answers[0] == old_version and answers[-20:] == ["next-version"] * 20


def _model_info_pids(base: str) -> set[int]:
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return {int(match) for match in re.findall(r'^moderation_model_info\{[^}]*pid="(\d+)"', text, flags=re.MULTILINE)}


def test_a_dead_workers_model_version_leaves_the_metrics(server):
    base, _ = server
    deadline = time.monotonic() + 60
    while len(pids := _model_info_pids(base)) < 2 and time.monotonic() < deadline:  # each worker reports once it has answered
        call(base + "/readyz")
    assert len(pids) == 2
    killed = min(pids)
    os.kill(killed, signal.SIGKILL)  # gunicorn starts a new worker in its place
    while time.monotonic() < deadline:
        call(base + "/readyz")
        now = _model_info_pids(base)
        if len(now) == 2 and killed not in now:
            break
        time.sleep(0.2)
    assert killed not in now and len(now) == 2, now

