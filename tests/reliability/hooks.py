"""Helpers shared by the security, signature and reliability tests: subscribing through the API,
emitting events through the API, and a small threaded HTTP receiver that counts deliveries."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient


def emit(api: APIClient, project_id: str, name: str = "ping", **attributes) -> dict:
    """Emit a custom event through the API (publishes `event.emit` and `event.emit.<name>`)."""
    response = api.post(f"/api/projects/{project_id}/events/", {"name": name, "attributes": attributes}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@dataclass
class Receipt:
    hook_id: str
    status: int
    at: float
    headers: dict
    body: bytes
    client_port: int  # which connection it came on: a kept-alive one repeats its port


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 (ThreadingHTTPServer) that records every POST it gets.

    `status` is what it answers and `delay_s` how long it takes (change them at any time); `down()`
    makes it refuse connections by closing its listening socket until `up()`."""

    status: int = 200
    delay_s: float = 0.0
    receipts: list[Receipt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    port: int = 0

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay_s)
                status = receiver.status
                with receiver.lock:
                    receiver.receipts.append(
                        Receipt(
                            hook_id=self.headers.get("x-hook-id", ""),
                            status=status,
                            at=time.time(),
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            client_port=self.client_address[1],
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):  # keep the test output for the counts
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def down(self) -> None:
        """Stop listening: connections are refused, as when the receiver's host is down."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def up(self) -> None:
        """Listen again on the same port."""
        if not self.server:
            self.start()

    def ok_counts(self) -> dict[str, int]:
        """How many 2xx answers each delivery id (x-hook-id) got."""
        counts: dict[str, int] = {}
        with self.lock:
            for receipt in self.receipts:
                if 200 <= receipt.status < 300:
                    counts[receipt.hook_id] = counts.get(receipt.hook_id, 0) + 1
        return counts

    def ids_received(self) -> set[str]:
        with self.lock:
            return {receipt.hook_id for receipt in self.receipts}

    def json_bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(receipt.body) for receipt in self.receipts]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5, required: bool = True):
    """Poll until `predicate()` is truthy; after `timeout` seconds fail (never hang), or return
    False when not `required` (the caller then reports its counts and asserts)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := predicate():
            return value
        time.sleep(interval)
    if required:
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
    return False
