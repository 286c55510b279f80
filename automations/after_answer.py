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
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
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


_in_flight: set[Future] = set()
_in_flight_lock = threading.Lock()
# Answers out whose run has not been handed on or written yet (their response's close() does it).
_answers_open = 0
_answers_closed = threading.Condition(_in_flight_lock)


def answer_opened() -> None:
    global _answers_open
    with _in_flight_lock:
        _answers_open += 1


def answer_closed() -> None:
    global _answers_open
    with _in_flight_lock:
        _answers_open -= 1
        _answers_closed.notify_all()


def finish_later(execution: Execution) -> None:
    """Queue the rest of the run; returns at once."""
    future = _pool().submit(_finish, execution)
    with _in_flight_lock:
        _in_flight.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future) -> None:
    with _in_flight_lock:
        _in_flight.discard(future)


def wait_idle(timeout_s: float) -> bool:
    """Whether every answered run has been written or handed over, and every run handed over has
    ended, within `timeout_s` (for whoever must not go on while one may still write: a test before
    its database is emptied)."""
    deadline = time.monotonic() + timeout_s
    with _in_flight_lock:
        if not _answers_closed.wait_for(lambda: _answers_open == 0, timeout=timeout_s):
            return False
        pending = list(_in_flight)
    return not wait(pending, timeout=max(0.0, deadline - time.monotonic())).not_done


def _finish(execution: Execution) -> None:
    try:
        execution.run_to_end()
    except Exception:  # run_to_end records failures itself; this is a last resort for the log
        logger.exception("automation run %s failed after its answer", execution.run.pk)
    finally:
        # This thread's own database connections (Django's are per thread).
        connections.close_all()
