"""The stale-run sweep. A run is finished by the process executing it; when that process dies (a
worker killed with -9, a gunicorn timeout, a restart) nothing else ever would, and the run would
say `running` forever to the API, the admin and the metrics."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import BigIntegerField, DateTimeField, F, Func, Value
from django.db.models.functions import Least
from django.utils import timezone

from .models import Run, RunRequest

logger = logging.getLogger(__name__)

# What Run.duration_ms (a 4-byte integer column) holds, some 24.8 days: older runs still get closed.
MAX_DURATION_MS = 2**31 - 1


class Milliseconds(Func):
    """A duration as whole milliseconds, computed by the database so that a single UPDATE gives each
    row its own duration. Django's datetime difference is microseconds on SQLite, an interval on
    PostgreSQL. Truncated like the engine's durations; 64-bit, so that Least() caps it before the
    4-byte column sees it."""

    output_field = BigIntegerField()
    template = "CAST(%(expressions)s / 1000 AS INTEGER)"

    def as_postgresql(self, compiler, connection, **extra):
        template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) * 1000) AS BIGINT)"
        return self.as_sql(compiler, connection, template=template, **extra)


def fail_stale_runs(now: datetime | None = None) -> int:
    """Close runs `running` for longer than AUTOMATION_RUN_STALE_AFTER_S; return how many.

    They become `failed`, not `timed_out`: `timed_out` means the engine saw the run reach
    AUTOMATION_MAX_RUNTIME_S (a caller got 504), while here nobody knows what stopped the run, or
    whether it started at all (a task still queued past the limit is closed too, and the worker then
    skips it, since it only executes `running` runs). The UPDATE is guarded by `status='running'`
    so that a run finishing at the same moment keeps its real outcome. The calls kept for runs no
    longer running (these, and any a dead worker left behind) are deleted."""
    now = now or timezone.now()
    stale_after = settings.AUTOMATION_RUN_STALE_AFTER_S
    error = (
        f"abandoned: still running {stale_after:g} s after the call came in (AUTOMATION_RUN_STALE_AFTER_S). "
        "The process running it stopped before finishing it (killed, restarted or past its timeout), "
        "or its task never reached a worker; the steps in the trace are what is known to have run."
    )
    cutoff = now - timedelta(seconds=stale_after)
    closed = Run.objects.filter(status=Run.Status.RUNNING, created_at__lt=cutoff).update(
        status=Run.Status.FAILED,
        error=error,
        finished_at=now,
        updated_at=now,
        duration_ms=Least(
            Milliseconds(Value(now, output_field=DateTimeField()) - F("created_at")),
            Value(MAX_DURATION_MS, output_field=BigIntegerField()),
        ),
    )
    RunRequest.objects.exclude(run__status=Run.Status.RUNNING).delete()
    if closed:
        logger.warning("closed %d automation run(s) left running for more than %g s", closed, stale_after)
    return closed
