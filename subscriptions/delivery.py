"""Sending a delivery: one HTTP POST per attempt, its log row, and what happens next.

The body is built once per attempt and those exact bytes are both signed and sent. Each worker
process keeps one pooled `requests.Session` so that repeated deliveries reuse connections, and one
pool of sender threads: a batch's fast targets go out one after another on one of them, and each
slow target gets a thread of its own while the rest go on, so a batch takes about as long as its
slowest target, not the sum of them, and a slow target does not hold the fast ones' log rows back
(see `send_all` and subscriptions/tasks.py)."""

import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from core.text import storable, storable_bytes, storable_text

from . import isolation, operational, outbound, signing, target_credentials
from .envelope_token import encode_envelope_token, redact, token_in
from .models import Attempt, Delivery, Subscription
from .redaction import redacted_headers, scrubbed
from .rows import insert_all

logger = logging.getLogger(__name__)

# Tiledesk's notifier sends `tiledesk-webhooks` (services/subscriptionNotifier.js:124); receivers
# written for it may look for that name.
USER_AGENT = "tiledesk-webhooks/1.0"
MAX_RETRY_AFTER_S = 24 * 3600
_RESPONSE_READ_LIMIT = 64 * 1024

# Results that arrive this close together are logged in one write.
FLUSH_WINDOW_S = 0.05
# A batch's next sender lane starts after this long without a result (send_all).
LANE_STAGGER_S = 0.02

_senders: ThreadPoolExecutor | None = None
_senders_pid: int | None = None
_process_lock = threading.Lock()


def sender_pool() -> ThreadPoolExecutor:
    """The process's sender threads, as many as a full batch has deliveries, so that a batch whose
    targets all hang is still all in flight and ends within about one HOOKS_TIMEOUT_S (send_all
    starts lanes only as they are needed). They only do HTTP, never the database."""
    global _senders, _senders_pid
    with _process_lock:
        if _senders is None or _senders_pid != os.getpid():
            _senders = ThreadPoolExecutor(max_workers=settings.HOOKS_BATCH_SIZE, thread_name_prefix="hooks-send")
            _senders_pid = os.getpid()
        return _senders


def hook_representation(subscription: Subscription) -> dict:
    """The `hook` object of the envelope, as Tiledesk sends it (no secret)."""
    return {
        "_id": subscription.pk,
        "id": subscription.pk,
        "createdAt": _iso(subscription.created_at),
        "updatedAt": _iso(subscription.updated_at),
        "target": subscription.target,
        "event": subscription.event,
        "id_project": subscription.project_id,
        "createdBy": str(subscription.created_by_id) if subscription.created_by_id else None,
        "__v": 0,
    }


def _iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope_bytes(delivery: Delivery) -> bytes:
    # The delivery's own name: the most specific one its subscription's `events` took.
    hook = {**hook_representation(delivery.subscription), "event": delivery.event}
    envelope = {
        "hook": hook,
        "timestamp": delivery.event_payload.timestamp_ms(),
        "payload": delivery.event_payload.payload,
        "token": encode_envelope_token(delivery.subscription, hook),
        "sequence": delivery.sequence,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def request_headers(delivery: Delivery, body: bytes, now_s: int) -> dict[str, str]:
    subscription = delivery.subscription
    headers = {
        **target_credentials.outgoing_headers(subscription),  # the protocol's own names win
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "x-hook-id": delivery.pk,
        "webhook-id": delivery.pk,
        "webhook-timestamp": str(now_s),
        "webhook-signature": signing.signature_header(subscription.signing_secrets(), delivery.pk, now_s, body),
    }
    if settings.HOOKS_SEND_SECRET_HEADER:
        headers["x-hook-secret"] = subscription.secret
    return headers


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


def record_attempt(delivery: Delivery, body: bytes, headers: dict[str, str], exchange: Exchange) -> Attempt:
    attempt = build_attempt(delivery, body, headers, exchange)
    attempt.save(force_insert=True)
    return attempt


def build_attempt(delivery: Delivery, body: bytes, headers: dict[str, str], exchange: Exchange) -> Attempt:
    """The attempt's log row, not saved yet; counts the attempt on `delivery`."""
    delivery.attempt_count += 1
    subscription = delivery.subscription
    sent_text = body.decode(errors="replace")
    credentials = [subscription.secret, subscription.previous_secret, token_in(sent_text) or ""]
    credentials += target_credentials.confidential_values(subscription)
    response_body = scrubbed(storable_bytes(exchange.response_body), credentials)
    return Attempt(
        project_id=delivery.project_id,
        delivery=delivery,
        subscription_id=delivery.subscription_id,
        event=delivery.event,
        attempt=delivery.attempt_count,
        target=subscription.target,
        request_headers=redacted_headers(headers),
        request_body=redact(sent_text),
        status_code=exchange.status_code,
        response_headers=scrubbed(storable(exchange.response_headers), credentials),
        response_body=response_body.encode()[: settings.HOOKS_RESPONSE_BODY_LIMIT].decode(errors="ignore"),
        error=scrubbed(storable_text(exchange.error), credentials)[:1000],
        duration_ms=exchange.duration_ms,
        outcome=Attempt.Outcome.SUCCESS if exchange.ok else Attempt.Outcome.FAILED,
    )


def retry_delay_s(delivery: Delivery, exchange: Exchange) -> float | None:
    """Seconds until the next attempt, or None when this round's attempts are used up."""
    failures_this_round = delivery.attempt_count - delivery.round_started_after
    delays = settings.HOOKS_RETRY_DELAYS_S
    if failures_this_round > len(delays):
        return None
    delay = delays[failures_this_round - 1] * (1 + random.uniform(0, settings.HOOKS_RETRY_JITTER))
    if exchange.status_code in (429, 503):
        delay = max(delay, _retry_after_s(exchange.response_headers.get("Retry-After")) or 0)
    return delay


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0), MAX_RETRY_AFTER_S)


def record_outcomes(sent: list[Outgoing]) -> list[Attempt]:
    """Log a group of finished attempts and move each delivery on: success, a retry, or failed.

    The log rows and the deliveries' new states commit together (a worker that dies, or loses the
    database, in between must not leave a recorded success on a delivery still pending), in a few
    statements for the whole group: the rows in one insert, the successes in one update."""
    now = timezone.now()
    attempts, succeeded, unsuccessful = [], [], []
    for outgoing in sent:
        delivery, exchange = outgoing.delivery, outgoing.exchange
        attempts.append(build_attempt(delivery, outgoing.body, outgoing.headers, exchange))
        delivery.locked_until, delivery.updated_at = None, now
        if exchange.ok:
            delivery.status, delivery.next_attempt_at, delivery.last_error = Delivery.Status.SUCCESS, None, ""
            succeeded.append(delivery.pk)
            continue
        delivery.last_error = (exchange.error or f"HTTP {exchange.status_code}")[:500]
        delay = None if exchange.status_code == 410 else retry_delay_s(delivery, exchange)
        if delay is None:
            delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        unsuccessful.append(delivery)
    try:
        with transaction.atomic():
            insert_all(attempts)  # one plain INSERT (subscriptions/rows.py)
            if succeeded:  # the claim is ours, so the count read with it is still the row's
                Delivery.objects.filter(pk__in=succeeded).update(
                    status=Delivery.Status.SUCCESS,
                    attempt_count=F("attempt_count") + 1,
                    next_attempt_at=None,
                    locked_until=None,
                    last_error="",
                    updated_at=now,
                )
            if unsuccessful:
                Delivery.objects.bulk_update(unsuccessful, _OUTCOME_FIELDS)
    except DatabaseError:
        # One row the database refuses (a delivery deleted while its request was out, a value no
        # cleaning foresaw) must not take the group's other rows with it: they would stay
        # claimed, unlogged, and be sent again when their lease ends.
        logger.exception("logging %d attempts together failed; logging them one by one", len(attempts))
        for outgoing, attempt in zip(sent, attempts, strict=True):
            _record_alone(outgoing.delivery, attempt)
    for attempt in attempts:
        logger.info("delivery %s attempt %s: %s", attempt.delivery_id, attempt.attempt,
                    attempt.status_code or attempt.error)  # fmt: skip
    return attempts


_OUTCOME_FIELDS = ["status", "attempt_count", "next_attempt_at", "locked_until", "last_error", "updated_at"]


def _record_alone(delivery: Delivery, attempt: Attempt) -> None:
    """One attempt's row and its delivery's new state, in their own transaction; if the row is
    refused, once more without what the receiver sent (saying so), so the attempt is still counted."""
    for row in (attempt, _without_answer(attempt)):
        try:
            with transaction.atomic():
                insert_all([row])
                Delivery.objects.bulk_update([delivery], _OUTCOME_FIELDS)
            return
        except DatabaseError as exc:
            failure = exc
    logger.error("attempt %s of delivery %s not logged: %s", attempt.attempt, delivery.pk, failure)


def _without_answer(attempt: Attempt) -> Attempt:
    note = "the receiver's answer could not be stored"
    fields = {f.attname: getattr(attempt, f.attname) for f in Attempt._meta.concrete_fields}
    error = f"{attempt.error}; {note}"[:1000] if attempt.error else note
    fields.update(response_headers={}, response_body="", error=error)
    return Attempt(**fields)


def disable_failing(sent: list[Outgoing], attempts: list[Attempt]) -> None:
    """After logging: a 410 disables its subscription at once; a subscription failing for too long
    is disabled too (checked once per subscription per group). A delivery of a subscription
    disabled here reads back the state that disabling gave it."""
    now = timezone.now()
    checked: set[str] = set()
    for outgoing, attempt in zip(sent, attempts, strict=True):
        subscription, exchange = outgoing.delivery.subscription, outgoing.exchange
        if exchange.ok or subscription.pk in checked:
            continue
        checked.add(subscription.pk)
        if exchange.status_code == 410:
            disable_subscription(subscription, "The target answered 410 Gone.", attempt)
        elif reason := failing_too_long(subscription, now):
            disable_subscription(subscription, reason, attempt)
    if checked:
        for outgoing in sent:
            if outgoing.delivery.subscription_id in checked and not outgoing.exchange.ok:
                outgoing.delivery.refresh_from_db(fields=["status", "next_attempt_at", "last_error"])


def failing_too_long(subscription: Subscription, now) -> str | None:
    """Why the subscription should be disabled for failing, or None.

    It qualifies when no attempt has succeeded since its first failure at least
    `HOOKS_DISABLE_AFTER_S` ago, with at least `HOOKS_DISABLE_AFTER_FAILURES` failed attempts.
    Failures before the subscription's last change (re-enabled, edited, disabled) do not count,
    so an operator who enables it again gives it a fresh period."""
    window_s = settings.HOOKS_DISABLE_AFTER_S
    attempts = Attempt.objects.filter(subscription_id=subscription.pk)
    last_success = (
        attempts.filter(outcome=Attempt.Outcome.SUCCESS).order_by("-created_at").values_list("created_at", flat=True)
    ).first()
    since = max(filter(None, (last_success, subscription.updated_at)))
    failures = attempts.filter(outcome=Attempt.Outcome.FAILED, created_at__gt=since)
    first_failure = failures.order_by("created_at").values_list("created_at", flat=True).first()
    if first_failure is None or first_failure > now - timedelta(seconds=window_s):
        return None
    needed = settings.HOOKS_DISABLE_AFTER_FAILURES
    count = failures[:needed].count()
    if count < needed:
        return None
    return (
        f"Every delivery failed for more than {_duration(window_s)} "
        f"(since {first_failure:%Y-%m-%d %H:%M} UTC, {count}{'+' if count == needed else ''} failed attempts)."
    )


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = round(seconds / size, 1)
            return f"{amount:g} {unit}{'' if amount == 1 else 's'}"
    return f"{seconds:g} seconds"


def disable_subscription(subscription: Subscription, reason: str, attempt: Attempt | None = None) -> None:
    """Disable with a visible reason: on the subscription, on every delivery it stops, and on the
    log row of the attempt that caused it."""
    note = f"subscription disabled: {reason}"
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(
            enabled=False, disabled_reason=reason[:300], updated_at=timezone.now()
        )
        # Nothing more goes to a disabled subscription; what was waiting stays visible and can be
        # redelivered once it is enabled again.
        Delivery.objects.filter(subscription=subscription, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.FAILED, next_attempt_at=None, locked_until=None, last_error=note[:500]
        )
        if attempt is not None:
            Delivery.objects.filter(pk=attempt.delivery_id).update(last_error=note[:500])
            attempt.error = f"{attempt.error}; {note}" if attempt.error else note
            Attempt.objects.filter(pk=attempt.pk).update(error=attempt.error[:1000])
        operational.announce_disabled(subscription, reason, attempt)
    subscription.enabled, subscription.disabled_reason = False, reason[:300]
    logger.warning("subscription %s disabled: %s", subscription.pk, reason)


def stop_if_disabled(delivery: Delivery) -> bool:
    """A claimed delivery whose subscription is disabled is not sent: it fails, saying why."""
    subscription = delivery.subscription
    if subscription.enabled:
        return False
    delivery.status, delivery.next_attempt_at, delivery.locked_until = Delivery.Status.FAILED, None, None
    delivery.last_error = f"subscription disabled: {subscription.disabled_reason or 'by an operator'}"[:500]
    delivery.save(update_fields=["status", "next_attempt_at", "locked_until", "last_error", "updated_at"])
    return True
