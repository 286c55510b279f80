import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from subscriptions import tasks


class Command(BaseCommand):
    help = "Hand every overdue pending delivery to the queue (e.g. after the worker was down)."

    def add_arguments(self, parser):
        parser.add_argument("--grace", type=float, default=0, help="only deliveries overdue by this many seconds")

    def handle(self, *args, grace: float, **options):
        with tqdm(unit="delivery", file=sys.stderr, disable=options["verbosity"] == 0) as bar:

            def progress(step: int, total: int) -> None:
                bar.total = total
                bar.update(step)

            count = tasks.retry_pending(grace_s=grace, progress=progress)
        self.stdout.write(f"{count} pending delivery(ies) queued")
