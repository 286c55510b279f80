import sys
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from subscriptions.maintenance import purge_attempts
from subscriptions.models import Attempt


class Command(BaseCommand):
    help = (
        "Delete delivery attempts (log rows) older than N days, in batches; finished deliveries and payloads left "
        "without purpose go with them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, required=True, metavar="DAYS")

    def handle(self, *args, older_than: float, **options):
        cutoff = timezone.now() - timedelta(days=older_than)
        total = Attempt.objects.filter(created_at__lt=cutoff).count()
        with tqdm(total=total, unit="row", file=sys.stderr, disable=options["verbosity"] == 0) as bar:
            removed = purge_attempts(cutoff, progress=bar.update)
        self.stdout.write(f"{removed} log row(s) deleted")
