"""Sending a group of claimed deliveries: one HTTP POST per attempt, through the hardened client
(subscriptions/outbound.py), side by side where it matters.

Each worker process keeps one pool of sender threads: a batch's fast targets go out one after
another on one of them, and each slow target gets a thread of its own while the rest go on, so a
batch takes about as long as its slowest target, not the sum of them, and a slow target does not
hold the fast ones' log rows back (see `send_all`)."""

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from django.conf import settings

from core.per_process import PerProcess

from . import isolation, outbound
from .envelope import envelope_bytes, request_headers
from .models import Delivery

logger = logging.getLogger(__name__)

_RESPONSE_READ_LIMIT = 64 * 1024
# Results that arrive this close together are logged in one write.
FLUSH_WINDOW_S = 0.05
# A batch's next sender lane starts after this long without a result (send_all).
LANE_STAGGER_S = 0.02

# The process's sender threads, as many as a full batch has deliveries, so that a batch whose
# targets all hang is still all in flight and ends within about one HOOKS_TIMEOUT_S (send_all
# starts lanes only as they are needed). They only do HTTP, never the database.
_senders = PerProcess(
    lambda: ThreadPoolExecutor(max_workers=settings.HOOKS_BATCH_SIZE, thread_name_prefix="hooks-send")
)


def sender_pool() -> ThreadPoolExecutor:
    return _senders.get()


@dataclass
class Exchange:
    """What one HTTP try produced."""

    status_code: int | None = None
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""
    error: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Exchange:
    """POST through the hardened client (subscriptions/outbound.py); a deadline passed becomes
    504 "Gateway Timeout", a refused target or a network error the attempt's error."""
    started = time.monotonic()
    exchange = Exchange()
    try:
        answer = outbound.fetch(
            "POST", url, headers=headers, body=body, timeout_s=timeout_s, read_limit=_RESPONSE_READ_LIMIT
        )
        exchange.status_code, exchange.response_headers, exchange.response_body = (
            answer.status_code,
            answer.headers,
            answer.body,
        )
        if 300 <= exchange.status_code < 400:
            exchange.error = f"redirect to {exchange.response_headers.get('Location', '?')} not followed"
    except outbound.TargetRefused as exc:
        exchange.error = str(exc)
    except requests.Timeout:
        exchange.status_code, exchange.error = 504, "Gateway Timeout"
    except requests.RequestException as exc:
        exchange.status_code, exchange.error = None, _short_error(exc)
    exchange.duration_ms = int((time.monotonic() - started) * 1000)
    return exchange


@dataclass
class Outgoing:
    """One attempt of a claimed delivery: the exact bytes and headers, then what came back."""

    delivery: Delivery
    body: bytes
    headers: dict[str, str]
    exchange: Exchange | None = None


def prepare(delivery: Delivery) -> Outgoing:
    body = envelope_bytes(delivery)
    return Outgoing(delivery, body, request_headers(delivery, body, int(time.time())))


def send(outgoing: Outgoing) -> Outgoing:
    """Never raises: whatever goes wrong becomes the attempt's error, so it is logged and retried."""
    try:
        outgoing.exchange = post(outgoing.delivery.subscription.target, outgoing.body, outgoing.headers,
                                 settings.HOOKS_TIMEOUT_S)  # fmt: skip
    except Exception as exc:  # a bug here must not lose the attempt's log row
        logger.exception("sending delivery %s", outgoing.delivery.pk)
        outgoing.exchange = Exchange(error=f"internal error: {_short_error(exc)}"[:1000])
    return outgoing


class _Lanes:
    """The sender lanes of one batch: threads that each take the next waiting delivery and send
    it, until none waits. They keep what the batch's dispatcher needs (finished attempts, which
    requests are open and since when, when the last answer came) and wake it only for the first
    answer of a group and for the batch's last one, not for every answer."""

    def __init__(self, batch: list[Outgoing]):
        self.size = len(batch)
        self.waiting = deque(batch)
        self.count = 0
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[int, tuple[Outgoing, float]] = {}
        self._finished: list[Outgoing] = []
        self._first_finished_at = 0.0
        self._answered = 0
        self.last_change_at = time.monotonic()

    def add(self) -> None:
        self.count += 1
        self.last_change_at = time.monotonic()
        sender_pool().submit(self._run)

    def _run(self) -> None:
        while True:
            try:
                outgoing = self.waiting.popleft()
            except IndexError:
                return
            with self._lock:
                self._open[id(outgoing)] = (outgoing, time.monotonic())
            try:
                send(outgoing)
            finally:
                with self._lock:
                    del self._open[id(outgoing)]
                    now = time.monotonic()
                    self._finished.append(outgoing)
                    self._answered += 1
                    self.last_change_at = now
                    if len(self._finished) == 1:
                        self._first_finished_at = now
                    if len(self._finished) == 1 or self._answered == self.size:
                        self.wake.set()

    def state(self) -> tuple[list[tuple[Outgoing, float]], int, float | None]:
        """(open requests with their start, answers so far, when the unyielded group began)."""
        with self._lock:
            return list(self._open.values()), self._answered, self._first_finished_at if self._finished else None

    def take_finished(self) -> list[Outgoing]:
        with self._lock:
            finished, self._finished = self._finished, []
            return finished


def send_all(batch: list[Outgoing]) -> Iterator[list[Outgoing]]:
    """Send the batch and yield what has come back, in groups: results arriving within
    FLUSH_WINDOW_S of each other are yielded together, so a batch of fast targets is logged in one
    write while a slow target's result comes later on its own.

    The batch starts on one sender lane; another lane joins whenever no answer has come back for
    LANE_STAGGER_S while deliveries still wait. Fast targets so go out one after another on one
    thread, while a slow target holds its lane and the others go on beside it: the batch still
    ends within about one HOOKS_TIMEOUT_S. (Sending all of them side by side from the start cost
    0.71 ms of CPU per POST against 0.43 ms one after another, the GIL's hand-offs between threads
    doing socket I/O; bench/README.md.) A target whose request has been open for
    isolation.SLOW_AFTER_S is marked slow at once, before its attempt ends."""
    lanes = _Lanes(batch)
    lanes.add()
    yielded, marked = 0, set()
    while yielded < len(batch):
        lanes.wake.clear()  # before reading the state: a lane's later wake-up is never lost
        now = time.monotonic()
        open_since, answered, group_began = lanes.state()
        if group_began is not None and (answered == len(batch) or now >= group_began + FLUSH_WINDOW_S):
            group = lanes.take_finished()
            yielded += len(group)
            yield group
            continue
        slow = [o for o, t in open_since if id(o) not in marked and now - t >= isolation.SLOW_AFTER_S]
        if slow:
            marked.update(id(o) for o in slow)
            isolation.mark_slow(o.delivery.subscription_id for o in slow)
        can_grow = bool(lanes.waiting) and lanes.count < len(batch)
        if can_grow and now >= lanes.last_change_at + LANE_STAGGER_S:
            lanes.add()
            continue
        # A request that a lane opens after this look cannot turn slow before now + SLOW_AFTER_S.
        deadlines = [t + isolation.SLOW_AFTER_S for o, t in open_since if id(o) not in marked]
        deadlines.append(now + isolation.SLOW_AFTER_S)
        if group_began is not None:
            deadlines.append(group_began + FLUSH_WINDOW_S)
        if can_grow:
            deadlines.append(lanes.last_change_at + LANE_STAGGER_S)
        lanes.wake.wait(max(0.0, min(deadlines) - now))


def _short_error(exc: Exception) -> str:
    text = str(exc)
    return (f"{type(exc).__name__}: {text}")[:1000]
