from django.core.management.base import BaseCommand, CommandError

from subscriptions import tasks
from subscriptions.models import Delivery


class Command(BaseCommand):
    help = "Send a past delivery again: new attempts on the same delivery id."

    def add_arguments(self, parser):
        parser.add_argument("delivery_id")

    def handle(self, *args, delivery_id: str, **options):
        delivery = Delivery.objects.filter(pk=delivery_id).first()
        if delivery is None:
            raise CommandError(f"No delivery {delivery_id!r}.")
        tasks.redeliver(delivery)
        self.stdout.write(f"delivery {delivery.pk} ({delivery.event} -> {delivery.subscription.target}) queued again")
