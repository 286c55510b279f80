"""`GET /healthz`: can this deployment deliver? The database answers, the broker answers, and a
django-q2 worker has shown a heartbeat recently. 200 when all three hold, else 503; always JSON."""

import time

from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker

from .workers import heartbeat


def _check(probe) -> dict:
    started = time.monotonic()
    try:
        detail = probe() or {}
        ok = detail.pop("ok", True)
    except Exception as exc:  # a health check reports failures, it does not raise them
        ok, detail = False, {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": bool(ok), "ms": round((time.monotonic() - started) * 1000, 1), **detail}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _broker() -> dict:
    broker = get_broker()
    return {"ok": bool(broker.ping()), "broker": type(broker).__name__}


def _worker() -> dict:
    beat = heartbeat()
    age = beat.age_s
    return {
        "ok": beat.alive,
        "clusters": beat.clusters,
        "workers": beat.workers,
        "heartbeat_age_s": None if age is None else round(age, 1),
    }


@transaction.non_atomic_requests
@require_GET
def healthz(request):
    checks = {"database": _check(_database), "broker": _check(_broker), "worker": _check(_worker)}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
