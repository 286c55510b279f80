"""Listeners on the support domain's signals: every change becomes a published event whose
payload is the object exactly as its API serializes it. The domain app does not import this."""

import json

from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver
from django_q.tasks import async_task
from rest_framework.renderers import JSONRenderer

from support import conversation_serializers as conversation_api
from support import models as domain
from support import serializers as api
from support.signals import project_deleted, request_closed

from . import deleted_projects, events
from .publishing import publish_event

# model -> (serializer, names on create, names on update, names on delete)
_LIFECYCLE = {
    # Every project user here is a teammate (Tiledesk's roleType "agents"), for which Tiledesk's
    # event/authEvent.js sends project_user.update.agent with every project_user.update.
    domain.ProjectUser: (
        api.ProjectUserSerializer,
        ("project_user.invite",),
        ("project_user.update", "project_user.update.agent"),
        ("project_user.delete",),
    ),
    domain.Group: (api.GroupSerializer, ("group.create",), ("group.update",), ("group.delete",)),
    domain.Department: (
        api.DepartmentSerializer,
        ("department.create",),
        ("department.update",),
        ("department.delete",),
    ),
    domain.FaqKb: (api.FaqKbSerializer, ("faqbot.create",), ("faqbot.update",), ("faqbot.delete",)),
    domain.Faq: (api.FaqSerializer, ("faq.create",), ("faq.update",), ("faq.delete",)),
    domain.Lead: (api.LeadSerializer, ("lead.create",), (), ()),
    domain.Request: (conversation_api.RequestSerializer, ("request.create",), ("request.update",), ()),
}


def payload_of(serializer_class, instance) -> dict:
    """The API representation as plain JSON types (what a client of the API would parse). It runs
    inside the domain write's transaction, so through the one serializer per class that
    `represent` keeps: a new one built its fields again for every event, 0.15 ms of a lead's
    save (bench/README.md)."""
    return json.loads(JSONRenderer().render(api.represent(serializer_class, instance)))


def project_payload(project: domain.Project) -> dict:
    """The project as its API serializes it, without the caller's `role` (an event has no caller),
    and with `id_project`, as Tiledesk's notifier adds it to project events."""
    data = json.loads(JSONRenderer().render(api.ProjectSerializer(project).data))
    data.pop("role", None)
    return {**data, "id_project": project.pk}


def _on_save(sender, instance, created, raw=False, **kwargs):
    if raw:  # fixtures being loaded are not domain changes
        return
    serializer_class, on_create, on_update, _ = _LIFECYCLE[sender]
    names = on_create if created else on_update
    if names:
        publish_event(instance.project_id, names, payload_of(serializer_class, instance))


def _on_delete(sender, instance, **kwargs):
    serializer_class, _, _, on_delete = _LIFECYCLE[sender]
    if on_delete:
        publish_event(instance.project_id, on_delete, payload_of(serializer_class, instance))


for _model in _LIFECYCLE:
    post_save.connect(_on_save, sender=_model, dispatch_uid=f"publish-save-{_model.__name__}")
    post_delete.connect(_on_delete, sender=_model, dispatch_uid=f"publish-delete-{_model.__name__}")


@receiver(post_save, sender=domain.Project, dispatch_uid="publish-project-update")
def _on_project_saved(sender, instance, created, raw=False, **kwargs):
    if not created and not raw and instance.deleted_at is None:
        publish_event(instance.pk, ["project.update"], project_payload(instance))


@receiver(project_deleted, dispatch_uid="publish-project-delete")
def _on_project_deleted(sender, instance, **kwargs):
    """In the deleting transaction, after the project is closed and before anything is erased:
    the delivery is written with the rest of the outbox and goes out like any other. The project
    is erased once nothing is left to send (at once if nothing is pending after this commit)."""
    publish_event(instance.pk, ["project.delete"], project_payload(instance))
    transaction.on_commit(lambda: async_task(deleted_projects.ERASE_TASK), robust=True)


@receiver(request_closed, dispatch_uid="publish-request-close")
def _on_request_closed(sender, instance, **kwargs):
    publish_event(
        instance.project_id, ["request.close"], payload_of(conversation_api.ClosedRequestSerializer, instance)
    )


@receiver(post_save, sender=domain.Message, dispatch_uid="publish-message")
def _on_message(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        publish_event(
            instance.project_id,
            events.names_for_message(instance.channel_name),
            payload_of(conversation_api.MessageSerializer, instance),
        )


@receiver(post_save, sender=domain.Event, dispatch_uid="publish-emitted-event")
def _on_emitted(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        publish_event(
            instance.project_id,
            events.names_for_emitted(instance.name),
            payload_of(conversation_api.EventSerializer, instance),
        )


@receiver(post_migrate, dispatch_uid="schedule-retry-sweep")
def _schedule_sweep(sender, **kwargs):
    """The periodic safety net that re-enqueues deliveries whose task was lost."""
    if sender.name != "subscriptions":
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="subscriptions.retry_pending",
        defaults={
            "func": "subscriptions.tasks.retry_pending",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


@receiver(post_migrate, dispatch_uid="schedule-deleted-project-erasure")
def _schedule_erasure(sender, **kwargs):
    """Deleted projects whose deliveries were still pending at deletion are erased by this sweep."""
    if sender.name != "subscriptions":
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=deleted_projects.ERASE_TASK,
        defaults={"func": deleted_projects.ERASE_TASK, "schedule_type": Schedule.MINUTES, "minutes": 10, "repeats": -1},
    )


@receiver(post_migrate, dispatch_uid="schedule-skipped-purge")
def _schedule_skipped_purge(sender, **kwargs):
    """Skipped deliveries are kept for HOOKS_EVENT_RETENTION_DAYS, for replay_missing."""
    if sender.name != "subscriptions":
        return
    from django_q.models import Schedule

    from .maintenance import PURGE_SKIPPED_TASK

    Schedule.objects.update_or_create(
        name=PURGE_SKIPPED_TASK,
        defaults={"func": PURGE_SKIPPED_TASK, "schedule_type": Schedule.DAILY, "repeats": -1},
    )
