"""`purge_attempts` (behind `manage.py purge_logs`) deletes in batches: old attempt rows, then the
finished deliveries and the payloads nothing refers to any more; recent rows and pending deliveries
stay. Guards the one-DELETE-per-batch path measured by bench/logs_scale.py."""

from datetime import timedelta

from django.utils import timezone

from subscriptions.maintenance import purge_attempts
from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from subscriptions.signing import new_secret


def test_purge_removes_old_rows_in_batches_and_keeps_recent_and_pending_ones(project):
    subscription = Subscription.objects.create(
        project=project, event="request.create", target="https://example.com/hook", secret=new_secret()
    )
    old, now = timezone.now() - timedelta(days=40), timezone.now()

    def delivery(at, status, attempts):
        payload = EventPayload.objects.create(project=project, payload={}, occurred_at=at)
        row = Delivery.objects.create(project=project, subscription=subscription, event=subscription.event,
                                      event_payload=payload, status=status, created_at=at)  # fmt: skip
        for n in range(1, attempts + 1):
            Attempt.objects.create(project=project, delivery=row, subscription=subscription, event=row.event,
                                   attempt=n, target=subscription.target, request_body="{}", outcome="success",
                                   created_at=at)  # fmt: skip
        return row

    finished_old = [delivery(old, "success", 2) for _ in range(3)]
    finished_old.append(delivery(old, "failed", 0))  # never attempted (its subscription was disabled)
    pending_old = delivery(old, "pending", 1)
    recent = delivery(now, "success", 1)

    removed = purge_attempts(now - timedelta(days=30), batch=2)

    assert removed == 7
    assert list(Attempt.objects.values_list("delivery_id", flat=True)) == [recent.pk]
    assert set(Delivery.objects.values_list("pk", flat=True)) == {pending_old.pk, recent.pk}
    assert not Delivery.objects.filter(pk__in=[d.pk for d in finished_old]).exists()
    kept_payloads = {pending_old.event_payload_id, recent.event_payload_id}
    assert set(EventPayload.objects.values_list("pk", flat=True)) == kept_payloads
