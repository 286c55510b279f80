"""What an attempt leaves behind: its log row, and the delivery's next state (success, a retry at
a time, or failed), written together for a group of attempts."""

import logging
import random
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from core.sql import fits_one_insert, insert_all
from core.text import storable, storable_bytes, storable_text

from . import target_credentials, transitions
from .envelope_token import redact, token_in
from .models import Attempt, Delivery
from .redaction import redacted_headers, scrubbed
from .sender import Exchange, Outgoing

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 24 * 3600
# How long a worker waits for the database to come back before giving up on writing outcomes
# (well inside django-q2's task timeout of HOOKS_TIMEOUT_S + 30 s, the batch in hand included).
DATABASE_WAIT_S = 15.0
_ATTEMPT_ERROR_LENGTH = Attempt._meta.get_field("error").max_length


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
        error=scrubbed(storable_text(exchange.error), credentials)[:_ATTEMPT_ERROR_LENGTH],
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
    attempts = []
    for outgoing in sent:
        delivery, exchange = outgoing.delivery, outgoing.exchange
        attempts.append(build_attempt(delivery, outgoing.body, outgoing.headers, exchange))
        if exchange.ok:
            transitions.succeed(delivery, now)
            continue
        error = exchange.error or f"HTTP {exchange.status_code}"
        delay = None if exchange.status_code == 410 else retry_delay_s(delivery, exchange)
        if delay is None:
            transitions.fail(delivery, error, now)
        else:
            transitions.retry_at(delivery, now + timedelta(seconds=delay), error, now)
    deliveries = [outgoing.delivery for outgoing in sent]
    try:
        _write_group(attempts, deliveries, now)
    except DatabaseError:
        # One row the database refuses (a delivery deleted while its request was out, a value no
        # cleaning foresaw) must not take the group's other rows with it: they would stay
        # claimed, unlogged, and be sent again when their lease ends.
        logger.exception("logging %d attempts together failed; logging them one by one", len(attempts))
        for delivery, attempt in zip(deliveries, attempts, strict=True):
            _record_alone(delivery, attempt)
    for attempt in attempts:
        logger.info("delivery %s attempt %s: %s", attempt.delivery_id, attempt.attempt,
                    attempt.status_code or attempt.error)  # fmt: skip
    return attempts


def _write_group(attempts: list[Attempt], deliveries: list[Delivery], now) -> None:
    """The group's rows and states in one transaction. A database that went away (a restart, a
    failover) is waited for, up to DATABASE_WAIT_S: the requests were sent, and an outcome not
    written leaves its deliveries to be sent again when their lease ends."""
    waited_until = time.monotonic() + DATABASE_WAIT_S
    # Only successes (the usual group), on PostgreSQL: one statement, atomic by itself.
    together = all(d.status == Delivery.Status.SUCCESS for d in deliveries) and fits_one_insert(attempts)
    while True:
        try:
            if together:
                insert_all(attempts, along_with=transitions.successes_update([d.pk for d in deliveries], now))
                return
            with transaction.atomic():
                insert_all(attempts)  # one plain INSERT (core/sql.py)
                transitions.write_outcomes(deliveries, now)
            return
        except (OperationalError, InterfaceError):
            lost = connection.connection is None or not connection.is_usable()
            if not lost or connection.in_atomic_block or time.monotonic() > waited_until:
                raise  # not a lost connection (e.g. SQLite busy), or nothing to reconnect here
            logger.warning("the database is unreachable; logging %d attempts again shortly", len(attempts))
            connection.close()
            time.sleep(1.0)


def _record_alone(delivery: Delivery, attempt: Attempt) -> None:
    """One attempt's row and its delivery's new state, in their own transaction; if the row is
    refused, once more without what the receiver sent (saying so), so the attempt is still counted."""
    for row in (attempt, _without_answer(attempt)):
        try:
            with transaction.atomic():
                insert_all([row])
                transitions.write_outcome(delivery)
            return
        except DatabaseError as exc:
            failure = exc
    logger.error("attempt %s of delivery %s not logged: %s", attempt.attempt, delivery.pk, failure)


def _without_answer(attempt: Attempt) -> Attempt:
    note = "the receiver's answer could not be stored"
    fields = {f.attname: getattr(attempt, f.attname) for f in Attempt._meta.concrete_fields}
    error = f"{attempt.error}; {note}"[:_ATTEMPT_ERROR_LENGTH] if attempt.error else note
    fields.update(response_headers={}, response_body="", error=error)
    return Attempt(**fields)
