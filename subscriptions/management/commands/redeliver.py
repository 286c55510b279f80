import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from tqdm import tqdm

from subscriptions import replay, tasks
from subscriptions.models import Delivery, Subscription
from support.models import Project


class Command(BaseCommand):
    help = (
        "Send a past delivery again (new attempts on the same delivery id), or with --failed --since every "
        "failed delivery since then, optionally of one subscription or project."
    )

    def add_arguments(self, parser):
        parser.add_argument("delivery_id", nargs="?")
        parser.add_argument("--failed", action="store_true", help="replay failed deliveries (needs --since)")
        parser.add_argument("--since", metavar="ISO-8601", help="failed deliveries created at or after this moment")
        parser.add_argument("--subscription", metavar="ID")
        parser.add_argument("--project", metavar="ID")
        parser.add_argument("--dry-run", action="store_true", help="list what would be replayed, change nothing")

    def handle(self, *args, delivery_id=None, failed=False, since=None, subscription=None, project=None, **options):
        if failed == bool(delivery_id):
            raise CommandError("Give either a delivery id or --failed --since <ISO-8601>.")
        if delivery_id:
            self.one(delivery_id, options["dry_run"])
        else:
            self.failed_since(since, subscription, project, options["dry_run"], options["verbosity"])

    def one(self, delivery_id: str, dry_run: bool) -> None:
        delivery = Delivery.objects.select_related("subscription").filter(pk=delivery_id).first()
        if delivery is None:
            raise CommandError(f"No delivery {delivery_id!r}.")
        if not delivery.redeliverable:
            raise CommandError("operator.select calls are synchronous and cannot be redelivered.")
        if not dry_run:
            tasks.redeliver(delivery)
        verb = "would be queued again" if dry_run else "queued again"
        self.stdout.write(f"delivery {delivery.pk} ({delivery.event} -> {delivery.subscription.target}) {verb}")

    def failed_since(self, since, subscription_id, project_id, dry_run: bool, verbosity: int) -> None:
        moment = parse_datetime(since or "")
        if moment is None:
            raise CommandError("--failed needs --since <ISO-8601>, e.g. --since 2026-11-23T00:00:00Z.")
        if is_naive(moment):
            moment = make_aware(moment)
        subscription = self._get(Subscription, subscription_id, "subscription")
        project = self._get(Project, project_id, "project")
        deliveries = replay.failed_since(moment, subscription=subscription, project=project)
        if dry_run:
            ids = list(deliveries.values_list("id", flat=True))
            for pk in ids:
                self.stdout.write(pk)
            self.stdout.write(f"{len(ids)} failed delivery(ies) would be replayed (dry run)")
            return
        with tqdm(total=deliveries.count(), unit="delivery", file=sys.stderr, disable=verbosity == 0) as bar:
            replayed = replay.replay(deliveries.iterator(), progress=lambda _delivery: bar.update(1))
        self.stdout.write(f"{len(replayed)} failed delivery(ies) queued again")

    @staticmethod
    def _get(model, pk, label):
        if pk is None:
            return None
        found = model.objects.filter(pk=pk).first()
        if found is None:
            raise CommandError(f"No {label} {pk!r}.")
        return found
