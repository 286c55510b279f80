from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from subscriptions import replay
from subscriptions.models import Subscription


def _moment(text: str | None, option: str):
    if text is None:
        return None
    moment = parse_datetime(text)
    if moment is None:
        raise CommandError(f"{option} takes an ISO-8601 moment, e.g. 2026-11-23T00:00:00Z.")
    return make_aware(moment) if is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Queue the deliveries a subscription missed while it was disabled (status skipped) created in a "
        "window, oldest first, with their delivery ids and sequence numbers."
    )

    def add_arguments(self, parser):
        parser.add_argument("subscription_id")
        parser.add_argument("--since", required=True, metavar="ISO-8601")
        parser.add_argument("--until", metavar="ISO-8601")
        parser.add_argument("--dry-run", action="store_true", help="list what would be queued, change nothing")

    def handle(self, *args, subscription_id: str, since: str, until: str | None, dry_run: bool, **options):
        subscription = Subscription.objects.filter(pk=subscription_id).first()
        if subscription is None:
            raise CommandError(f"No subscription {subscription_id!r}.")
        start, end = _moment(since, "--since"), _moment(until, "--until")
        if dry_run:
            ids = list(replay.skipped_between(subscription, start, end).values_list("id", flat=True))
            for pk in ids:
                self.stdout.write(pk)
            self.stdout.write(f"{len(ids)} skipped delivery(ies) would be queued (dry run)")
            return
        if not subscription.enabled:
            raise CommandError("The subscription is disabled: enable it first (a disabled one is sent nothing).")
        queued = replay.replay_missing(subscription, start, end)
        self.stdout.write(f"{len(queued)} skipped delivery(ies) queued")
