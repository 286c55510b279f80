"""A deleted project is closed at once and erased once its last deliveries are done.

`DELETE /api/projects/{pid}/` (`support.services.delete_project`) marks the project deleted: from then
on it answers 404 to everyone, its automations are removed, and `project.delete` is published in
that same transaction. Its events still to be routed and its deliveries still pending
(`project.delete`'s own, retries of earlier events) need their subscription, payload and project
rows, so the project stays as it is until none is left; then it is erased with everything in it.
`erase_deleted_projects` runs right after each deletion commits (erasing at once a project with
nothing left to send) and every ten minutes."""

from django.db import transaction
from django.db.models import Exists, OuterRef

from support.models import Project, Request

from .models import Delivery, EventPayload, Subscription

ERASE_TASK = "subscriptions.deleted_projects.erase_deleted_projects"


def _pending(project_id):
    return Delivery.objects.filter(project_id=project_id, status=Delivery.Status.PENDING)


def _unrouted(project_id):
    return EventPayload.objects.filter(project_id=project_id, names__isnull=False)


def erase_deleted_projects() -> int:
    """Erase every deleted project with no delivery pending and no event waiting to be routed
    (`project.delete` itself, until a worker has made its deliveries); returns how many were
    erased."""
    erased = 0
    candidates = Project.objects.filter(deleted_at__isnull=False).exclude(
        Exists(_pending(OuterRef("pk"))) | Exists(_unrouted(OuterRef("pk")))
    )
    for project_id in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            # Locked and checked again: a delivery may have been retried since.
            project = Project.objects.select_for_update().filter(pk=project_id, deleted_at__isnull=False).first()
            if project is None or _pending(project_id).exists() or _unrouted(project_id).exists():
                continue
            # The outbox first: with no subscription left, the deletions below publish nothing.
            Subscription.objects.filter(project=project).delete()
            EventPayload.objects.filter(project=project).delete()
            # Conversations before their leads, which they protect.
            Request.objects.filter(project=project).delete()
            project.delete()
        erased += 1
    return erased
