"""The endpoint under gunicorn, the production web server: chunked bodies and the flow going on
after its response has been sent."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import child_env, wait_for

from .conftest import finished_run

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "tiledesk_hooks.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", "1", "--threads", "2", "--log-level", "warning"],
        cwd=REPO, env=child_env(AUTOMATION_MAX_BODY_BYTES=1000), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{base}/webhook/none", timeout=1).status_code == 404
        except requests.RequestException:
            return False

    assert wait_for(up, timeout=20), (tmp_path / "gunicorn.log").read_text()
    yield base
    proc.terminate()
    proc.wait(10)
    log.close()


def test_chunked_bodies_are_read_and_bounded_under_gunicorn(gunicorn, make_automation):
    automation = make_automation([{"action": "response", "status": 200, "body": "{{ payload }}"}])
    url = f"{gunicorn}/webhook/{automation.webhook_id}"

    def chunks(size):
        yield b'{"a": "'
        yield b"x" * size
        yield b'"}'

    small = requests.post(url, data=chunks(10), headers={"Content-Type": "application/json"}, timeout=10)
    assert small.status_code == 200 and small.json() == {"a": "x" * 10}
    large = requests.post(url, data=chunks(5000), headers={"Content-Type": "application/json"}, timeout=10)
    assert large.status_code == 413 and large.json()["detail"]


def answer_slowly(httpserver) -> None:
    """/slow answers after 3 s: a flow's step after its response that takes a while."""

    def slow(request):
        time.sleep(3)
        return "{}"

    httpserver.expect_request("/slow").respond_with_handler(slow)


def test_caller_gets_the_response_before_the_rest_of_the_flow_runs(gunicorn, make_automation, httpserver):
    answer_slowly(httpserver)
    automation = make_automation(
        [
            {"action": "response", "status": 202, "body": {"queued": True}},
            {"action": "http_request", "url": httpserver.url_for("/slow"), "save_as": "r"},
            {"action": "log", "message": "after: {{ r.status }}"},
        ]
    )
    started = time.monotonic()
    response = requests.post(f"{gunicorn}/webhook/{automation.webhook_id}", json={}, timeout=10)
    assert response.status_code == 202 and response.json() == {"queued": True}
    assert time.monotonic() - started < 2.5  # not held for the slow step
    run = finished_run(automation)
    assert run.status == "succeeded" and run.trace[2]["output"] == "after: 200"


def test_the_callers_next_request_on_the_same_connection_does_not_wait_for_the_rest(
    gunicorn, make_automation, httpserver
):
    answer_slowly(httpserver)
    automation = make_automation(
        [
            {"action": "response", "status": 202, "body": {"queued": True}},
            {"action": "http_request", "url": httpserver.url_for("/slow"), "save_as": "r"},
        ]
    )
    quick = make_automation([{"action": "response", "status": 200, "body": {"quick": True}}], name="quick")
    with requests.Session() as session:  # one keep-alive connection
        started = time.monotonic()
        assert session.post(f"{gunicorn}/webhook/{automation.webhook_id}", json={}, timeout=10).status_code == 202
        assert session.post(f"{gunicorn}/webhook/{quick.webhook_id}", json={}, timeout=10).json() == {"quick": True}
        assert time.monotonic() - started < 2  # the second did not wait for the first one's slow step (3 s)
    assert finished_run(automation).status == "succeeded"
