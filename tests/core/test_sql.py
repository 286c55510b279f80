"""The plain-SQL insert stores exactly what the ORM would, whatever the values hold: on PostgreSQL
several rows of short values travel as arrays, where text with braces, quotes, commas or the word
NULL and missing values must come back as they went in; rows with JSON and long text as VALUES.
A constant written into a statement's text is only ever a plain word."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core import sql
from subscriptions.models import Attempt, Delivery, EventPayload
from tests.factories import subscription

AWKWARD_TEXTS = ['{"a": 1}', "NULL", "a,b", 'say "hi"', "back\\slash", "", "ünïcode ✓", "{}", "line\nbreak"]


@pytest.fixture
def delivery(project) -> Delivery:
    subscribed = subscription(project)
    payload = EventPayload.objects.create(project=project, payload={}, occurred_at=timezone.now())
    return Delivery.objects.create(
        project=project, subscription=subscribed, event="request.create", event_payload=payload
    )


def attempt(delivery: Delivery, number: int, **fields) -> Attempt:
    return Attempt(
        project_id=delivery.project_id,
        delivery=delivery,
        subscription_id=delivery.subscription_id,
        event=delivery.event,
        attempt=number,
        target="https://hooks.example.com/",
        outcome=Attempt.Outcome.SUCCESS,
        **{"request_body": "{}", **fields},
    )


def test_several_rows_with_json_and_long_text_come_back_as_they_went_in(delivery):
    rows = [
        attempt(
            delivery,
            number,
            request_body=text,
            response_body=text,
            request_headers={"x-text": text, "nested": {"list": [text, None, 1.5]}},
            response_headers={} if number % 2 else {"n": number},
            status_code=None if number % 3 == 0 else 200 + number,
        )
        for number, text in enumerate(AWKWARD_TEXTS)
    ]

    sql.insert_all(rows)

    stored = {row.attempt: row for row in Attempt.objects.filter(delivery=delivery)}
    assert sorted(stored) == list(range(len(AWKWARD_TEXTS)))
    for row in rows:
        again = stored[row.attempt]
        assert (again.request_body, again.response_body) == (row.request_body, row.response_body)
        assert (again.request_headers, again.response_headers) == (row.request_headers, row.response_headers)
        assert again.status_code == row.status_code and again.created_at == row.created_at


def test_several_rows_of_short_values_come_back_as_they_went_in_whatever_their_text(delivery):
    moment = timezone.now()
    rows = [
        Delivery(
            project_id=delivery.project_id,
            subscription_id=delivery.subscription_id,
            event=f"request.{text}",
            event_payload=delivery.event_payload,
            last_error=text,
            decision=text[::-1],
            sequence=number,
            parked_at=None if number % 2 else moment,
        )
        for number, text in enumerate(AWKWARD_TEXTS)
    ]

    sql.insert_all(rows)

    stored = Delivery.objects.in_bulk([row.pk for row in rows])
    for row in rows:
        again = stored[row.pk]
        assert (again.event, again.last_error, again.decision) == (row.event, row.last_error, row.decision)
        assert (again.sequence, again.parked_at) == (row.sequence, row.parked_at)


def test_rows_sharing_a_value_and_rows_without_one_keep_each_their_own(delivery):
    shared, later = timezone.now(), timezone.now() + timedelta(minutes=5)
    payload = delivery.event_payload
    rows = [
        Delivery(
            project_id=delivery.project_id,
            subscription_id=delivery.subscription_id,
            event="request.create",
            event_payload=payload,
            status=Delivery.Status.SKIPPED if skipped else Delivery.Status.PENDING,
            next_attempt_at=None if skipped else (later if number == 3 else shared),
            created_at=shared,
        )
        for number, skipped in enumerate([False, False, True, False, True, False])
    ]

    sql.insert_all(rows)

    stored = Delivery.objects.in_bulk([row.pk for row in rows])
    assert [(stored[row.pk].status, stored[row.pk].next_attempt_at) for row in rows] == [
        ("pending", shared),
        ("pending", shared),
        ("skipped", None),
        ("pending", later),
        ("skipped", None),
        ("pending", shared),
    ]
    assert all(not row._state.adding for row in rows)


@pytest.mark.django_db
def test_a_literal_is_the_value_the_database_compares_with_and_never_more_than_a_plain_word():
    assert sql.select(f"SELECT {sql.literal('pending')}, {sql.literal(True)}, {sql.literal(False)}", []) in (
        [("pending", True, False)],
        [("pending", 1, 0)],  # SQLite's booleans
    )
    for hostile in ("pending' OR 'a'='a", "a b", "x;--", ""):
        with pytest.raises(ValueError):
            sql.literal(hostile)
