"""The production setup of the Procfile, for real: its `web` (gunicorn) and `worker` (qcluster)
commands on the Redis broker and PostgreSQL, all on 127.0.0.1; an API call through gunicorn becomes a
webhook the receiver gets."""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests
from django.db import connection

from subscriptions.models import Delivery
from tests.conftest import REPO, child_env, received, wait_for

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("E2E_Q_BROKER", "redis://127.0.0.1:6379/3")
Q_NAME = os.environ.get("E2E_Q_NAME", "h_console")


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, name: str, command: str, env: dict, log_dir: Path):
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["bash", "-c", "exec " + command],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def production(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the production end-to-end test needs PostgreSQL: set DATABASE_URL=postgres://...")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).flushdb()  # this test's own db index
    except redis.RedisError as exc:
        pytest.skip(f"the production end-to-end test needs Redis at {REDIS_URL}: {exc}")
    port = free_port()
    env = child_env(
        Q_BROKER=REDIS_URL,
        Q_NAME=Q_NAME,
        HOST="127.0.0.1",
        PORT=port,
        WEB_CONCURRENCY=2,
        Q_WORKERS=2,
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    commands = procfile()
    processes = [Process(name, commands[name], env, tmp_path) for name in ("web", "worker")]
    base = f"http://127.0.0.1:{port}"
    up = wait_for(lambda: _get(base + "/healthz") == 200, timeout=60, interval=0.5)
    if not up:
        for process in processes:
            process.stop()
        pytest.fail("web and worker did not become healthy:\n" + "\n".join(p.output() for p in processes))
    yield base
    for process in processes:
        process.stop()


def _get(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def test_a_request_created_through_gunicorn_is_delivered_by_the_qcluster(production, owner, project, httpserver):
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    session = requests.Session()
    session.headers["Authorization"] = f"Token {owner.auth_token.key}"
    api = f"{production}/api/projects/{project.pk}"

    health = session.get(production + "/healthz").json()
    assert health["checks"]["broker"]["broker"] == "Redis"
    assert health["checks"]["database"]["vendor"] == "postgresql"
    created = session.post(
        api + "/subscriptions/", json={"event": "request.create", "target": httpserver.url_for("/hook")}
    )
    assert created.status_code == 201
    request = session.post(api + "/requests/", json={"first_text": "Hello", "lead": {"fullname": "Ann"}})
    assert request.status_code == 201

    assert wait_for(lambda: received(httpserver), timeout=30), "no delivery arrived"
    [got] = received(httpserver)
    assert got["json"]["payload"]["id"] == request.json()["id"]
    assert got["headers"]["x-hook-secret"] == created.json()["secret"]
    assert wait_for(lambda: Delivery.objects.filter(status="success").count() == 1, timeout=10)
    assert shlex.split(procfile()["worker"])[-1] == "qcluster"


def test_gunicorn_serves_the_docs_and_their_assets(production):
    docs = requests.get(production + "/api/docs/", timeout=10)
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text)
    assert assets
    for asset in assets:
        assert requests.get(production + asset, timeout=10).status_code == 200, asset
    assert requests.get(production + "/metrics", timeout=10).status_code == 200
