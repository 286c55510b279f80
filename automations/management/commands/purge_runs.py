"""Delete automation runs older than N days, in batches so that running flows are not held up."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from automations.models import Run

BATCH = 5000


class Command(BaseCommand):
    help = "Delete automation runs older than --older-than days (default AUTOMATION_RUN_RETENTION_DAYS)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=None, metavar="DAYS")

    def handle(self, *args, older_than: float | None, **options):
        days = settings.AUTOMATION_RUN_RETENTION_DAYS if older_than is None else older_than
        if days < 0:
            self.stderr.write("--older-than must be 0 or more days.")
            return
        cutoff = timezone.now() - timedelta(days=days)
        total = 0
        while True:
            ids = list(Run.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:BATCH])
            if not ids:
                break
            total += Run.objects.filter(pk__in=ids).delete()[1].get(Run._meta.label, 0)
        self.stdout.write(f"Deleted {total} run(s) older than {days:g} day(s).")
