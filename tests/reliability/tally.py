"""Counting what a fault scenario delivered: losses and duplicates, each duplicate explained."""

from dataclasses import dataclass, field

from subscriptions.models import Attempt, Delivery

from .hooks import Receiver


@dataclass
class Tally:
    deliveries: int
    delivered: int
    lost: list[str]
    duplicates: int
    after_recorded_failure: int
    after_worker_crash: int
    unexplained: list[str] = field(default_factory=list)
    failed_attempts: int = 0
    receipts: int = 0

    def line(self, scenario: str, events: int, seconds: float) -> str:
        return (
            f"[reliability {scenario}] events={events} deliveries={self.deliveries} delivered={self.delivered} "
            f"lost={len(self.lost)} receipts={self.receipts} failed_attempts={self.failed_attempts} "
            f"duplicate_2xx={self.duplicates} (after a recorded failure: {self.after_recorded_failure}, "
            f"resent because the sender died or lost the database before recording its 2xx: {self.after_worker_crash}, "
            f"unexplained: {len(self.unexplained)}) seconds={seconds:.0f}"
        )


def tally(receiver: Receiver, disrupted_at: float | None = None) -> Tally:
    """Compare what the receiver got (2xx answers per x-hook-id) with the database.

    A delivery id answered 2xx more than once is explained when the database records a failed
    attempt of it (a retry after a failure), or when fewer successes are recorded than the
    receiver gave and the unrecorded one came before the disruption (the sender died between the
    receiver's answer and the commit of the log row; at-least-once delivery resends it). Anything
    else is a double send, `unexplained`."""
    expected = set(Delivery.objects.values_list("pk", flat=True))
    ok = receiver.ok_counts()
    duplicates = {hook_id: n for hook_id, n in ok.items() if n > 1}
    after_failure = after_crash = 0
    unexplained = []
    first_ok_at: dict[str, float] = {}
    for receipt in receiver.receipts:
        if 200 <= receipt.status < 300:
            first_ok_at.setdefault(receipt.hook_id, receipt.at)
    for hook_id, n in duplicates.items():
        attempts = Attempt.objects.filter(delivery_id=hook_id)
        recorded_ok = attempts.filter(outcome=Attempt.Outcome.SUCCESS).count()
        if attempts.filter(outcome=Attempt.Outcome.FAILED).exists():
            after_failure += 1
        elif recorded_ok < n and disrupted_at is not None and first_ok_at[hook_id] <= disrupted_at:
            after_crash += 1
        else:
            unexplained.append(hook_id)
    return Tally(
        deliveries=len(expected),
        delivered=len(expected & set(ok)),
        lost=sorted(expected - set(ok)),
        duplicates=len(duplicates),
        after_recorded_failure=after_failure,
        after_worker_crash=after_crash,
        unexplained=unexplained,
        failed_attempts=Attempt.objects.filter(outcome=Attempt.Outcome.FAILED).count(),
        receipts=len(receiver.receipts),
    )
