"""The one HTTP client for every request the platform makes to a tenant's URL: deliveries, the
`operator.select` call and automations' `http_request` steps.

Whatever the receiver does, a request through `fetch` is bounded three ways:
- where it goes: the target's host is checked when the request starts, and the connection itself
  refuses a forbidden peer address (subscriptions/targets.py, against DNS rebinding);
- how long it takes: one total deadline for connecting, sending and reading the whole answer. A
  socket timeout alone bounds each wait, not their sum, so a receiver that trickles its answer a
  byte at a time would keep a worker for as long as it likes (past the claim's lease, and the
  delivery would then be sent twice). One watchdog thread per process shuts down the socket of a
  request that reaches its deadline, which ends any read in progress;
- how much is read: at most `read_limit` bytes of the body.

It keeps one pooled `requests.Session` per process (a forked worker makes its own, never sharing
sockets), so that repeated requests to a target reuse their connections."""

import heapq
import http.cookiejar
import ipaddress
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .targets import TargetRefused, address_problem, check_at_send_time, refusal

__all__ = ["Answer", "DeadlineExceeded", "TargetRefused", "fetch", "http_session"]


class DeadlineExceeded(requests.Timeout):
    """The request did not finish (connect, send and read of the whole answer) by its deadline."""


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes


@dataclass(eq=False)
class _Watch:
    """One request's deadline, and the sockets to cut when it passes."""

    deadline: float
    sockets: list = field(default_factory=list)
    connection: object = None
    active: bool = True
    expired: bool = False

    def cut(self) -> None:
        self.expired = True
        sockets = list(self.sockets)
        if self.connection is not None and getattr(self.connection, "sock", None) is not None:
            sockets.append(self.connection.sock)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed already
                pass


class _Watchdog:
    """One thread per process that cuts the requests whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="hooks-deadlines", daemon=True).start()

    def watch(self, deadline: float) -> _Watch:
        watch = _Watch(deadline)
        with self._changed:
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._heap[0][2] is watch:
                self._changed.notify()
        return watch

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._changed.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                watch = heapq.heappop(self._heap)[2]
            if watch.active:
                watch.cut()


_local = threading.local()


def current_watch() -> _Watch | None:
    """The deadline of the request this thread is making (read by the guarded connections)."""
    return getattr(_local, "watch", None)


# `check_at_send_time` resolves the host name, then the HTTP client resolves it again to connect: a
# DNS server answering a public address first and a private one next (DNS rebinding) would slip
# through. So the connection itself also refuses to stay connected to a forbidden peer address.
# It also puts its socket in the reach of the request's deadline.


class _Guarded:
    def _new_conn(self):
        sock = super()._new_conn()
        watch = current_watch()
        if watch is not None:
            watch.sockets.append(sock)
            if watch.expired:  # the deadline passed while connecting
                sock.close()
                raise DeadlineExceeded("no time left after connecting")
        if not settings.HOOKS_ALLOW_PRIVATE_TARGETS:
            if address_problem(ipaddress.ip_address(sock.getpeername()[0].split("%")[0])):
                sock.close()
                raise TargetRefused(refusal(self.host))
        return sock

    def request(self, *args, **kwargs):
        if (watch := current_watch()) is not None:
            watch.connection = self
        return super().request(*args, **kwargs)


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse forbidden peer addresses (raises TargetRefused)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }


_process_lock = threading.Lock()
_session: requests.Session | None = None
_watchdog: _Watchdog | None = None
_owner_pid: int | None = None


def _for_this_process() -> tuple[requests.Session, _Watchdog]:
    global _session, _watchdog, _owner_pid
    with _process_lock:
        if _session is None or _owner_pid != os.getpid():
            session = requests.Session()
            size = max(64, settings.HOOKS_BATCH_SIZE)
            adapter = GuardedAdapter(pool_connections=64, pool_maxsize=size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = False
            # Requests to tenants' URLs are independent: a receiver's cookies are never kept.
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            _session, _watchdog, _owner_pid = session, _Watchdog(), os.getpid()
        return _session, _watchdog


def http_session() -> requests.Session:
    """The process's pooled, guarded session."""
    return _for_this_process()[0]


def fetch(
    method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout_s: float, read_limit: int
) -> Answer:
    """One request, redirects not followed, within `timeout_s` in all. Raises TargetRefused,
    DeadlineExceeded (a requests.Timeout) or another requests.RequestException."""
    session, watchdog = _for_this_process()
    started = time.monotonic()
    check_at_send_time(url)
    remaining = timeout_s - (time.monotonic() - started)
    if remaining <= 0:
        raise DeadlineExceeded("no time left to connect")
    watch = watchdog.watch(started + timeout_s)
    _local.watch = watch
    try:
        # Session.send of a prepared request, not Session.request: the per-call merging of session
        # settings, environment and cookies cost about 0.08 of the 0.46 ms of CPU a POST takes.
        prepared = requests.Request(method, url, data=body, headers=headers).prepare()
        with session.send(prepared, timeout=remaining, allow_redirects=False, stream=True) as response:
            answer = Answer(response.status_code, dict(response.headers), _read_limited(response, read_limit))
    except TargetRefused:
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if watch.expired:
            raise DeadlineExceeded(f"no complete answer within {timeout_s:g} s") from None
        if isinstance(exc, requests.RequestException):
            raise
        raise requests.ConnectionError(exc) from exc  # a body broken off while read
    finally:
        watch.active = False
        _local.watch = None
    if watch.expired:  # the answer was cut short: what was read is not the whole of it
        raise DeadlineExceeded(f"no complete answer within {timeout_s:g} s")
    return answer


def _read_limited(response: requests.Response, limit: int) -> bytes:
    chunks, size = [], 0
    # read1-sized pieces: urllib3's read(amt) would wait for `amt` bytes of a trickling body.
    for chunk in response.raw.stream(min(limit, 16384), decode_content=True):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
