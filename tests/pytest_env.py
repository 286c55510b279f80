"""Loaded by pytest before Django reads its settings (see addopts): the test environment.

Targets on 127.0.0.1 are allowed (the receivers run there), timeouts are short, and django-q2 runs
tasks in-process unless a test starts a real qcluster. A retry never comes due by itself while a
test drains the queue in-process (on a loaded machine a short delay would run out during the drain
and add an attempt the test did not ask for): a test that wants its retries moves the clock
(`retries_come_due`). The workers and servers a test starts retry after 0.2 s (`child_env`)."""

import os

os.environ.setdefault("HOOKS_ALLOW_PRIVATE_TARGETS", "1")
os.environ.setdefault("HOOKS_TIMEOUT_S", "2")
os.environ.setdefault("HOOKS_RETRY_DELAYS_S", "60,60,60")
os.environ.setdefault("HOOKS_RETRY_WAKE_S", "0.05")
os.environ.setdefault("HOOKS_OPERATOR_SELECT_TIMEOUT_S", "1")
os.environ.setdefault("AUTOMATION_MAX_RUNTIME_S", "5")
os.environ.setdefault("Q_SYNC", "1")
os.environ.setdefault("Q_WORKERS", "2")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + "x" * 40)
