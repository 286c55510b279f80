from django.core.management.base import BaseCommand

from subscriptions import tasks


class Command(BaseCommand):
    help = "Hand every overdue pending delivery to the queue (e.g. after the worker was down)."

    def add_arguments(self, parser):
        parser.add_argument("--grace", type=float, default=0, help="only deliveries overdue by this many seconds")

    def handle(self, *args, grace: float, **options):
        count = tasks.retry_pending(grace_s=grace)
        self.stdout.write(f"{count} pending delivery(ies) queued")
