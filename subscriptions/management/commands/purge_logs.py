from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from subscriptions.maintenance import purge_attempts


class Command(BaseCommand):
    help = "Delete delivery attempts (log rows) older than N days, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, required=True, metavar="DAYS")

    def handle(self, *args, older_than: float, **options):
        removed = purge_attempts(timezone.now() - timedelta(days=older_than))
        self.stdout.write(f"{removed} log row(s) deleted")
