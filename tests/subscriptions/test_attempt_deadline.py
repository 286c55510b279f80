"""Each attempt has one total deadline, HOOKS_TIMEOUT_S, for connecting, sending and reading the
whole answer: a receiver that trickles its answer is cut there and the attempt logged as 504."""

import time

from subscriptions.models import Attempt, Delivery
from tests.factories import subscribed
from tests.reliability.hooks import emit

TIMEOUT_S = 0.5


def trickle(conn, head: bytes, tail: bytes, every_s: float = 0.05) -> None:
    """Send `head` at once, then `tail` one byte at a time: each byte comes well within any socket
    timeout, the whole never within the deadline."""
    conn.sendall(head)
    for byte in tail:
        conn.sendall(bytes([byte]))
        time.sleep(every_s)


def emitted_to(api, project, receiver, on_commit) -> Attempt:
    """The attempt of one event sent to `receiver`, checked to be cut at the deadline: logged as
    504, and over long before the receiver's whole answer (10 s of trickling) could have come."""
    subscribed(api, project.pk, receiver.url, "event.emit")
    started = time.monotonic()
    with on_commit():
        emit(api, project.pk)
    attempt = Attempt.objects.get()
    assert (attempt.status_code, attempt.error, attempt.outcome) == (504, "Gateway Timeout", "failed")
    assert time.monotonic() - started < TIMEOUT_S + 2.0  # the API call and the sending included
    return attempt


def test_a_receiver_trickling_its_headers_is_cut_at_the_deadline_and_logged_as_504(
    api, project, raw_receiver, on_commit, settings
):
    settings.HOOKS_TIMEOUT_S = TIMEOUT_S
    receiver = raw_receiver(lambda conn: trickle(conn, b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"z" * 200))
    attempt = emitted_to(api, project, receiver, on_commit)
    assert attempt.duration_ms < (TIMEOUT_S + 0.5) * 1000
    assert Delivery.objects.get().status == "pending"


def test_a_receiver_trickling_its_body_is_cut_at_the_deadline_and_logged_as_504(
    api, project, raw_receiver, on_commit, settings
):
    settings.HOOKS_TIMEOUT_S = TIMEOUT_S
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 200\r\n\r\n"
    receiver = raw_receiver(lambda conn: trickle(conn, head, b"y" * 200))
    assert emitted_to(api, project, receiver, on_commit).duration_ms < (TIMEOUT_S + 0.5) * 1000


def test_an_answer_within_the_deadline_is_not_cut(api, project, raw_receiver, on_commit, settings):
    settings.HOOKS_TIMEOUT_S = TIMEOUT_S
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    receiver = raw_receiver(lambda conn: trickle(conn, head, b"thank", every_s=0.02))
    subscribed(api, project.pk, receiver.url, "event.emit")
    with on_commit():
        emit(api, project.pk)
    attempt = Attempt.objects.get()
    assert (attempt.status_code, attempt.response_body, attempt.outcome) == (200, "thank", "success")
