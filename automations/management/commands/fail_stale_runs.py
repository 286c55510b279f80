"""Run the stale-run sweep now, e.g. right after an incident, instead of waiting for its schedule."""

from django.conf import settings
from django.core.management.base import BaseCommand

from automations.maintenance import fail_stale_runs


class Command(BaseCommand):
    help = "Mark automation runs still running after AUTOMATION_RUN_STALE_AFTER_S seconds as failed."

    def handle(self, *args, **options):
        closed = fail_stale_runs()
        self.stdout.write(
            f"Marked {closed} run(s) running for more than {settings.AUTOMATION_RUN_STALE_AFTER_S:g} s as failed."
        )
