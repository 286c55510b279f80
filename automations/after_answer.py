"""The rest of a flow after its `response`: run by a small pool of threads of the web process, so
the caller's connection is free as soon as its answer is out.

Running it in the response's `close()` (as WSGI allows) held the connection: with keep-alive, the
caller's next request on it waited for the whole rest of the flow. The generator that executes a
flow (engine.run_steps) holds its variables, outputs and position in memory, so the rest runs where
that state is, in this process; a run whose process dies is closed by the stale-run sweep. A flow
whose response is its last step has nothing left but writing its run: that stays in `close()`,
cheaper than a hand-off (the common `set` + `response` flow)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from django.conf import settings
from django.db import connections

from .engine import Execution

logger = logging.getLogger(__name__)


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=settings.AUTOMATION_AFTER_ANSWER_THREADS, thread_name_prefix="automation-after-answer"
    )


def finish_later(execution: Execution) -> None:
    """Queue the rest of the run; returns at once."""
    _pool().submit(_finish, execution)


def _finish(execution: Execution) -> None:
    try:
        execution.run_to_end()
    except Exception:  # run_to_end records failures itself; this is a last resort for the log
        logger.exception("automation run %s failed after its answer", execution.run.pk)
    finally:
        # This thread's own database connections (Django's are per thread).
        connections.close_all()
