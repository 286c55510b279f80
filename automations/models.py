"""Automations (a flow behind two webhook URLs) and their runs (one per inbound call).

A run keeps everything needed to understand a call afterwards: what came in (header values
redacted, the body truncated), what the flow did step by step, and what the caller got back. A run
executed by a worker also has, until it ends, its `RunRequest`: the call exactly as it came."""

import secrets
from contextlib import contextmanager

from django.conf import settings
from django.db import models

from core.crypto import decrypt, encrypt
from core.sql import insert_all
from core.text import storable
from support.ids import new_object_id
from support.models import Project, Timestamped


def new_webhook_id() -> str:
    """192 random bits, URL-safe: the webhook URL is the only credential a caller needs."""
    return secrets.token_urlsafe(24)


class Automation(Timestamped):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    flow = models.JSONField(default=dict)
    webhook_id = models.CharField(max_length=64, unique=True, default=new_webhook_id, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Browser origins allowed to call the webhook URLs (["https://site.example"] or ["*"]).
    cors_origins = models.JSONField(default=list, blank=True)
    # How a caller proves who it is (automations/inbound_auth.py), or null: anyone with the URL.
    auth = models.JSONField(null=True, blank=True)
    # Networks (CIDRs) the caller must be in; empty: any.
    ip_allowlist = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.name

    def regenerate_webhook_id(self) -> str:
        """A new id; the old URLs stop working as soon as this is saved."""
        self.webhook_id = new_webhook_id()
        self.save(update_fields=["webhook_id", "updated_at"])
        return self.webhook_id


class RunManager(models.Manager):
    def insert(self, run: "Run") -> None:
        """Write a new run with one plain INSERT (core/sql.py): one is written per call of an
        automation's URL, 0.19 against 0.27 ms of CPU through Model.save."""
        with run.recorded_values():
            insert_all([run])


class Run(Timestamped):
    class Mode(models.TextChoices):
        PRODUCTION = "production"
        DEVELOPMENT = "development"

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        TIMED_OUT = "timed_out"

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    # No index of its own: run_by_automation_mode starts with this column (one index less to write
    # on every call of an automation's URL).
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="automation_runs")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.PRODUCTION)
    method = models.CharField(max_length=12)
    query = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    content_type = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField(blank=True, default="")
    body_truncated = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True, default="")
    # {"status", "headers", "body"} as the caller got it; null until the run answered.
    response = models.JSONField(null=True, blank=True)
    # One entry per executed step: {"id", "action", "input", "output", "error", "variables", "duration_ms"}.
    trace = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # What followed the webhook id in the URL (/webhook/{id}/orders/42: "orders/42").
    path = models.CharField(max_length=1000, blank=True, default="")
    # The recorded run this one replays (its call, against the flow as it is now).
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = RunManager()

    class Meta:
        indexes = [
            models.Index(fields=["automation", "mode", "-created_at"], name="run_by_automation_mode"),
            # The stale-run sweep looks for old `running` rows every few minutes among weeks of
            # finished ones; this index holds only the few running rows.
            models.Index(fields=["created_at"], condition=models.Q(status="running"), name="run_running_since"),
        ]

    # Fields whose values come from outside: the caller, the flow's templates, receivers, errors.
    OUTSIDE_VALUES = ("method", "content_type", "body", "query", "headers", "response", "trace", "error")

    def __str__(self) -> str:
        return f"{self.method} {self.mode} run {self.pk} ({self.status})"

    # Replaces the values of the project's secrets the run loaded (project_secrets.Scrubber).
    scrub = staticmethod(lambda value: value)

    def recordable(self, value):
        """`value` as it may be written: storable, with the run's secrets scrubbed."""
        return storable(self.scrub(value))

    @contextmanager
    def recorded_values(self):
        """The outside values made storable (and scrubbed of secrets) for a write, and given back
        afterwards: a running flow keeps appending to its trace."""
        originals = {name: getattr(self, name) for name in self.OUTSIDE_VALUES}
        for name, value in originals.items():
            setattr(self, name, self.recordable(value))
        try:
            yield
        finally:
            for name, value in originals.items():
                setattr(self, name, value)

    def save(self, *args, **kwargs) -> None:
        # Callers control these values (core/text.py: what PostgreSQL refuses).
        with self.recorded_values():
            super().save(*args, **kwargs)

    def write(self) -> None:
        """Insert a new run (Run.objects.insert), or save the one written before."""
        if self._state.adding:
            Run.objects.insert(self)
        else:
            self.save()


class RunRequest(models.Model):
    """The inbound call of a run that a worker executes, exactly as it came (the whole body, up to
    AUTOMATION_MAX_BODY_BYTES, and every header): the worker reads it from here, so the task queue
    carries only the run's id and never a caller's body or credentials. Deleted when the run ends
    (or when the stale-run sweep closes it); the run keeps its own truncated, redacted copy."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="inbound_call")
    method = models.CharField(max_length=12)
    # The whole Content-Type header (a multipart body needs its boundary).
    content_type = models.TextField(blank=True, default="")
    query_string = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict)
    body = models.BinaryField(blank=True, default=b"")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"inbound call of run {self.run_id}"


class Secret(Timestamped):
    """A project's credential, used by flows as `{{ secrets.NAME }}` and by inbound authentication.
    The value is written, never read back through any API or page: it is kept encrypted
    (core/crypto.py) and scrubbed from everything a run records."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=64)
    encrypted_value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="secret_name_per_project")]

    def __str__(self) -> str:
        return self.name

    @property
    def value(self) -> str:
        return decrypt(self.encrypted_value)

    @value.setter
    def value(self, plain: str) -> None:
        self.encrypted_value = encrypt(plain)
