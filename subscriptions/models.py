"""Subscriptions, and the outbox of events, deliveries and their attempts.

A published event writes one `EventPayload` (the payload serialized once, and the names it was
published under) in the transaction of the domain change; a worker then routes it
(subscriptions/routing.py): one `Delivery` per matching subscription. Every HTTP try is an
`Attempt` row. A woken worker claims due rows (subscriptions/transitions.py) before sending them.

Foreign keys: the database checks each outbox row against its parent once, along one chain
(attempt -> delivery -> subscription -> project, and delivery -> payload). A row's copies of an
ancestor's id, kept for its indexes (a delivery's and a payload's project, an attempt's project
and subscription), are written from that chain in the same statement and carry no constraint of
their own: every such check locks the parent row (key share) until its transaction ends, and
those on a project's row, taken by every publish and every logged attempt of the project, made
each concurrent lock a new multixact on it (bench/README.md). Deleting still goes through
Django's cascade, which follows these fields all the same."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from support.ids import new_object_id
from support.models import Project

from . import matching, targets
from .events import OPERATOR_SELECT
from .signing import new_secret


def _object_id() -> models.CharField:
    return models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)


# Sent by the lifecycle below when a subscription stops or comes back (subscription=, and for a stop
# reason= and last_attempt=, the attempt that caused it or None); subscriptions/operational.py
# announces them to the project.
subscription_disabled = Signal()
subscription_enabled = Signal()


class Subscription(models.Model):
    class Ordering(models.TextChoices):
        NONE = "none"
        # One delivery in flight at a time, in `sequence` order (subscriptions/transitions.py).
        FIFO = "fifo"

    id = _object_id()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="subscriptions")
    # The first of `events`: Tiledesk's one name, read by its clients and by the unique
    # operator.select constraint and the publishing index.
    event = models.CharField(max_length=200, db_index=True)
    events = models.JSONField(default=list, blank=True)
    # True when `events` takes more than `event` (several names, or a wildcard): publishing then
    # reads the row whatever the published names are, and matches its patterns in Python.
    matches_many = models.BooleanField(default=False, editable=False)
    # Conditions on the payload (subscriptions/payload_filter.py); null takes every event.
    filter = models.JSONField(null=True, blank=True)
    target = models.URLField(max_length=2000)
    secret = models.CharField(max_length=100, default=new_secret)
    # Custom headers and target auth, encrypted (subscriptions/target_credentials.py); not editable,
    # so that no form, the admin's included, ever shows them.
    headers_sealed = models.TextField(blank=True, default="", editable=False)
    auth_sealed = models.TextField(blank=True, default="", editable=False)
    # After a rotation the old secret keeps signing beside the new one until it expires, so that
    # receivers can switch over without dropping deliveries.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    ordering = models.CharField(max_length=10, choices=Ordering.choices, default=Ordering.NONE)
    # Deliveries per second, null for no limit (subscriptions/pacing.py); `rate_next_at` is the
    # pacing's one piece of state: when the next delivery may go without exceeding it.
    rate_limit = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001), MaxValueValidator(100_000)]
    )
    rate_next_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # Until when this target counts as slow (subscriptions/isolation.py). In the database, not in a
    # worker's memory, so that every worker process knows it, including one started a moment ago.
    slow_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(event=OPERATOR_SELECT), name="one_operator_select_per_project"
            )
        ]
        indexes = [models.Index(fields=["project", "event", "enabled"], name="sub_match_idx")]

    def __str__(self) -> str:
        return f"{', '.join(self.events or [self.event])} -> {self.target}"

    def clean(self) -> None:
        if problem := targets.credentials_problem(self.target):
            raise ValidationError({"target": problem})

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_ordering = instance.__dict__.get("ordering")
        return instance

    def save(self, *args, **kwargs):
        self.events = list(self.events or [self.event])
        self.event = self.events[0]
        self.matches_many = len(self.events) > 1 or matching.is_wildcard(self.event)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"event", "events"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "event", "events", "matches_many"}
        super().save(*args, **kwargs)
        stored = getattr(self, "_stored_ordering", None)
        if stored is not None and stored != self.ordering and (update_fields is None or "ordering" in update_fields):
            # What is still waiting (or may be replayed) follows the new ordering too.
            waiting = self.deliveries.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.SKIPPED])
            waiting.update(in_order=self.in_order)
        self._stored_ordering = self.ordering

    @property
    def in_order(self) -> bool:
        return self.ordering == self.Ordering.FIFO

    # The lifecycle, used alike by the API, the admin, the commands and the worker. Each writes
    # `updated_at`: the auto-disable rule counts failures from a subscription's last change, so an
    # operator who enables it again gives it a fresh period.

    def enable(self) -> None:
        was_enabled = self.enabled
        self.enabled, self.disabled_reason = True, ""
        self.save(update_fields=["enabled", "disabled_reason", "updated_at"])
        if not was_enabled:
            subscription_enabled.send(sender=Subscription, subscription=self)

    def disable(self, reason: str, last_attempt: "Attempt | None" = None) -> None:
        """Disabled with a reason shown wherever the subscription is (what was still waiting for it
        fails when a worker reaches it, saying so: subscriptions/disabling.py)."""
        was_enabled = self.enabled
        self.enabled = False
        self.disabled_reason = reason[: self._meta.get_field("disabled_reason").max_length]
        self.save(update_fields=["enabled", "disabled_reason", "updated_at"])
        if was_enabled:
            subscription_disabled.send(sender=Subscription, subscription=self, reason=reason, last_attempt=last_attempt)

    def rotate_secret(self) -> str:
        """A new secret; the old one keeps signing beside it for HOOKS_SECRET_ROTATION_GRACE_S."""
        self.previous_secret = self.secret
        self.previous_secret_expires_at = timezone.now() + timedelta(seconds=settings.HOOKS_SECRET_ROTATION_GRACE_S)
        self.secret = new_secret()
        self.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        return self.secret

    def signing_secrets(self, now=None) -> list[str]:
        now = now or timezone.now()
        secrets_ = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets_.append(self.previous_secret)
        return secrets_


class SequenceCounter(models.Model):
    """The `sequence` of a subscription's latest delivery (subscriptions/sequences.py).

    A row of its own, not a column of the subscription: every delivery and attempt row locks its
    subscription's row (key share, their foreign keys) when its transaction commits, and a counter
    on that row, rewritten by every publish, made each of those locks a new multixact on it; and a
    save of a subscription read before a publish committed would write its old count back, so that
    numbers were given twice. Made by the first delivery numbered for the subscription."""

    subscription = models.OneToOneField(
        Subscription, on_delete=models.CASCADE, primary_key=True, related_name="sequence_counter"
    )
    last_sequence = models.BigIntegerField(default=0)


class EventPayload(models.Model):
    """One published event: its payload, shared by all its deliveries (serialized once), and until
    a worker has routed it (subscriptions/routing.py), the names it was published under."""

    id = _object_id()
    # Its deliveries' project (the module's docstring: foreign keys).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    payload = models.JSONField()
    occurred_at = models.DateTimeField(default=timezone.now)
    # Set while the event waits to be routed; null once its deliveries are made, and for a payload
    # written with its deliveries (a test event, an operator.select call).
    names = models.JSONField(null=True, blank=True)
    # When it was published, by the database's clock: routing gives it to the subscriptions made
    # before that moment, oldest events first.
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The events waiting to be routed, oldest first: a small index, whatever the table holds.
            models.Index(
                fields=["published_at", "id"], condition=Q(names__isnull=False), name="eventpayload_unrouted_idx"
            ),
        ]

    def timestamp_ms(self) -> int:
        return int(self.occurred_at.timestamp() * 1000)


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCESS = "success"
        FAILED = "failed"
        # Made while its subscription was disabled: never tried, kept for replay_missing.
        SKIPPED = "skipped"

    id = _object_id()
    # No index of their own: delivery_project_idx and delivery_sub_idx start with these columns
    # (every index is written on each delivery and each attempt; see migration 0004).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="deliveries", db_index=False, db_constraint=False
    )  # its subscription's (the module's docstring: foreign keys)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    event = models.CharField(max_length=200)
    event_payload = models.ForeignKey(EventPayload, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Increasing per subscription, given when the row is made, the same on every retry.
    sequence = models.BigIntegerField(null=True, blank=True, editable=False)
    # Its subscription's `ordering` is "fifo": only the pending delivery of lowest sequence may be
    # claimed (a copy on the row, so that the claim reads one table).
    in_order = models.BooleanField(default=False, editable=False)
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts counted from here belong to the current round; a redelivery starts a new round with
    # the full retry schedule while attempt numbers keep counting.
    round_started_after = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, null=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Set while the delivery waits behind its slow target's delivery in flight, unattempted
    # (subscriptions/isolation.py).
    parked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # For operator.select: what the answer led to ("webhook" or "fallback: <reason>").
    decision = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
            models.Index(fields=["project", "-created_at"], name="delivery_project_idx"),
            models.Index(fields=["subscription", "-created_at"], name="delivery_sub_idx"),
            # Small partial indexes for subscriptions/isolation.py: deliveries in flight, and
            # deliveries parked behind a slow target's delivery in flight.
            models.Index(
                fields=["subscription"], condition=Q(locked_until__isnull=False), name="delivery_in_flight_idx"
            ),
            models.Index(
                fields=["subscription", "created_at"],
                condition=Q(parked_at__isnull=False),
                name="delivery_parked_idx",
            ),
            # The claim's "is there an earlier pending delivery of this ordered subscription".
            models.Index(
                fields=["subscription", "sequence"],
                condition=Q(status="pending", in_order=True),
                name="delivery_in_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.id} ({self.status})"

    @property
    def redeliverable(self) -> bool:
        """operator.select calls are synchronous: their answer only mattered while the
        conversation was being routed, so they are never sent again."""
        return self.event != OPERATOR_SELECT


class Attempt(models.Model):
    """One HTTP try of a delivery: the log row of the logs API."""

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILED = "failed"

    id = _object_id()
    # Indexed through attempt_project_idx and attempt_sub_idx, which start with these columns; its
    # delivery's, copied for those indexes (the module's docstring: foreign keys).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="attempts", db_index=False, db_constraint=False
    )
    event = models.CharField(max_length=200)
    attempt = models.PositiveIntegerField()
    target = models.CharField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    error = models.CharField(max_length=1000, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-created_at"], name="attempt_project_idx"),
            # Covering (project_id included): the logs API always filters by project too, and its
            # page count is then an index-only scan (bench/logs_scale.py: 37 ms -> 0.2 ms at 200k rows).
            models.Index(
                fields=["subscription", "outcome", "-created_at"], include=["project"], name="attempt_sub_idx"
            ),
            models.Index(fields=["project", "outcome", "-created_at"], name="attempt_outcome_idx"),
            models.Index(fields=["created_at"], name="attempt_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} attempt {self.attempt} -> {self.status_code or self.error}"
