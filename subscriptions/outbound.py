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

It keeps one urllib3 pool manager per process (a forked worker makes its own, never sharing
sockets), so that repeated requests to a target reuse their connections. urllib3 is what requests
sends with. `fetch` calls it directly, because the layers of a `requests.Session` in between
(preparing the request, hooks, cookies, the adapter's response object) were a third of the CPU of
a delivery's POST (0.53 against 0.33 ms; bench/README.md). It keeps requests' side of the
contract: its header checks, and its exception types, which callers catch. The headers on the
wire are the caller's and urllib3's, as they were through requests' prepared requests. Redirects
are never followed and cookies never kept: requests to tenants' URLs are independent."""

import heapq
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
from requests import certs
from requests.utils import check_header_validity
from urllib3 import exceptions as transport
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .targets import TargetRefused, address_problem, check_at_send_time, refusal

__all__ = ["Answer", "DeadlineExceeded", "TargetRefused", "fetch"]


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


_process_lock = threading.Lock()
_pools: urllib3.PoolManager | None = None
_watchdog: _Watchdog | None = None
_owner_pid: int | None = None


def _for_this_process() -> tuple[urllib3.PoolManager, _Watchdog]:
    global _pools, _watchdog, _owner_pid
    with _process_lock:
        if _pools is None or _owner_pid != os.getpid():
            # requests' certificate authorities (certifi's), not the system's: what it verified before.
            pools = urllib3.PoolManager(
                num_pools=64, maxsize=max(64, settings.HOOKS_BATCH_SIZE), retries=False, ca_certs=certs.where()
            )
            pools.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}
            _pools, _watchdog, _owner_pid = pools, _Watchdog(), os.getpid()
        return _pools, _watchdog


def _checked(headers) -> dict[str, str]:
    """The caller's headers, each checked as requests checks them (no line breaks, no leading
    whitespace: raises InvalidHeader before anything is sent)."""
    for header in headers.items():
        check_header_validity(header)
    return dict(headers)


def fetch(
    method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout_s: float, read_limit: int
) -> Answer:
    """One request, redirects not followed, within `timeout_s` in all. Raises TargetRefused,
    DeadlineExceeded (a requests.Timeout) or another requests.RequestException."""
    pools, watchdog = _for_this_process()
    started = time.monotonic()
    check_at_send_time(url)
    remaining = timeout_s - (time.monotonic() - started)
    if remaining <= 0:
        raise DeadlineExceeded("no time left to connect")
    watch = watchdog.watch(started + timeout_s)
    _local.watch = watch
    try:
        timeout = urllib3.Timeout(connect=remaining, read=remaining)
        response = pools.urlopen(method, url, body=body, headers=_checked(headers), timeout=timeout, redirect=False,
                                 preload_content=False, decode_content=True)  # fmt: skip
        try:
            answer = Answer(response.status, dict(response.headers), _read_limited(response, read_limit))
        finally:
            response.close()  # a body read to its end has given its connection back to the pool already
    except TargetRefused:
        raise
    except (requests.RequestException, transport.HTTPError, OSError) as exc:
        if watch.expired:
            raise DeadlineExceeded(f"no complete answer within {timeout_s:g} s") from None
        raise _as_requests_error(exc) from exc
    finally:
        watch.active = False
        _local.watch = None
    if watch.expired:  # the answer was cut short: what was read is not the whole of it
        raise DeadlineExceeded(f"no complete answer within {timeout_s:g} s")
    return answer


def _as_requests_error(exc: Exception) -> requests.RequestException:
    """The exception requests would have raised for what urllib3 raised (requests.adapters)."""
    if isinstance(exc, requests.RequestException):
        return exc
    if isinstance(exc, transport.NewConnectionError):  # a subclass of ConnectTimeoutError
        return requests.ConnectionError(exc)
    for raised, kind in (
        (transport.ConnectTimeoutError, requests.ConnectTimeout),
        (transport.ReadTimeoutError, requests.ReadTimeout),
        (transport.SSLError, requests.exceptions.SSLError),
        (transport.URLSchemeUnknown, requests.exceptions.InvalidSchema),
        (transport.LocationValueError, requests.exceptions.InvalidURL),
        (transport.DecodeError, requests.exceptions.ContentDecodingError),
    ):
        if isinstance(exc, raised):
            return kind(exc)
    return requests.ConnectionError(exc)  # a refused or broken connection, a body broken off


def _read_limited(response: urllib3.BaseHTTPResponse, limit: int) -> bytes:
    chunks, size = [], 0
    # read1-sized pieces: urllib3's read(amt) would wait for `amt` bytes of a trickling body.
    for chunk in response.stream(min(limit, 16384), decode_content=True):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
