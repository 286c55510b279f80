"""Keeps the stale-run sweep on django-q2's scheduler (every qcluster runs it; django-q2 fires each
schedule once even with several clusters), so no deployment has to remember a cron job."""

from django.db.models.signals import post_migrate
from django.dispatch import receiver

SWEEP_NAME = "automations.fail_stale_runs"
SWEEP_EVERY_MINUTES = 5


@receiver(post_migrate, dispatch_uid="schedule-stale-run-sweep")
def _schedule_stale_run_sweep(sender, **kwargs) -> None:
    """Idempotent (a fixed name), so every `migrate` of every release may run it; it also puts back a
    schedule deleted by hand or changed in the admin."""
    if sender.name != "automations":
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SWEEP_NAME,
        defaults={
            "func": "automations.maintenance.fail_stale_runs",
            "schedule_type": Schedule.MINUTES,
            "minutes": SWEEP_EVERY_MINUTES,
            "repeats": -1,
        },
    )
