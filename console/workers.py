"""Is a django-q2 worker alive? The clusters' own status records (django_q `Stat`, refreshed by
each cluster's sentinel every cycle and expiring after a few seconds) are the heartbeat."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.status import Stat


@dataclass(frozen=True)
class Heartbeat:
    clusters: int
    workers: int
    last_seen: datetime | None

    @property
    def age_s(self) -> float | None:
        return None if self.last_seen is None else max(0.0, (timezone.now() - self.last_seen).total_seconds())

    @property
    def alive(self) -> bool:
        return self.age_s is not None and self.age_s < settings.HOOKS_WORKER_HEARTBEAT_MAX_AGE_S


def heartbeat(broker=None) -> Heartbeat:
    # A cluster that is still starting or already stopping has no worker taking tasks.
    stats = [
        stat
        for stat in Stat.get_all(broker or get_broker())
        if getattr(stat, "timestamp", None) and stat.status in (Conf.IDLE, Conf.WORKING) and stat.workers
    ]
    return Heartbeat(
        clusters=len(stats),
        workers=sum(len(stat.workers) for stat in stats),
        last_seen=max((stat.timestamp for stat in stats), default=None),
    )
