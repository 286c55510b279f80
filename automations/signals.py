"""Keeps the stale-run sweep on django-q2's scheduler (every qcluster runs it; django-q2 fires each
schedule once even with several clusters), so no deployment has to remember a cron job; and stops a
deleted project's webhook URLs at once."""

from django.db.models.signals import post_migrate
from django.dispatch import receiver

from support.signals import project_deleted

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


@receiver(project_deleted, dispatch_uid="remove-deleted-project-automations")
def _remove_deleted_project_automations(sender, instance, **kwargs) -> None:
    """A deleted project's rows are erased only once its last webhooks are sent, but its webhook
    URLs must stop answering now: its automations (and their runs) go with the deletion."""
    from .models import Automation

    Automation.objects.filter(project=instance).delete()
