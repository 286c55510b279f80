"""Listeners on the support domain's signals: every change becomes a published event whose
payload is the object exactly as its API serializes it. The domain app does not import this."""

import json

from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver
from rest_framework.renderers import JSONRenderer

from support import models as domain
from support import serializers as api
from support.signals import request_closed

from . import events
from .publishing import publish_event

# model -> (serializer, name on create, name on update or None, name on delete or None)
_LIFECYCLE = {
    domain.ProjectUser: (
        api.ProjectUserSerializer,
        "project_user.invite",
        "project_user.update",
        "project_user.delete",
    ),
    domain.Group: (api.GroupSerializer, "group.create", "group.update", "group.delete"),
    domain.Department: (api.DepartmentSerializer, "department.create", "department.update", "department.delete"),
    domain.FaqKb: (api.FaqKbSerializer, "faqbot.create", "faqbot.update", "faqbot.delete"),
    domain.Faq: (api.FaqSerializer, "faq.create", "faq.update", "faq.delete"),
    domain.Lead: (api.LeadSerializer, "lead.create", None, None),
    domain.Request: (api.RequestSerializer, "request.create", "request.update", None),
}


def payload_of(serializer_class, instance) -> dict:
    """The API representation as plain JSON types (what a client of the API would parse)."""
    data = serializer_class(instance, context={"project": instance.project}).data
    return json.loads(JSONRenderer().render(data))


def _on_save(sender, instance, created, raw=False, **kwargs):
    if raw:  # fixtures being loaded are not domain changes
        return
    serializer_class, on_create, on_update, _ = _LIFECYCLE[sender]
    name = on_create if created else on_update
    if name:
        publish_event(instance.project_id, [name], payload_of(serializer_class, instance))


def _on_delete(sender, instance, **kwargs):
    serializer_class, _, _, on_delete = _LIFECYCLE[sender]
    if on_delete:
        publish_event(instance.project_id, [on_delete], payload_of(serializer_class, instance))


for _model in _LIFECYCLE:
    post_save.connect(_on_save, sender=_model, dispatch_uid=f"publish-save-{_model.__name__}")
    post_delete.connect(_on_delete, sender=_model, dispatch_uid=f"publish-delete-{_model.__name__}")


@receiver(request_closed, dispatch_uid="publish-request-close")
def _on_request_closed(sender, instance, **kwargs):
    publish_event(instance.project_id, ["request.close"], payload_of(api.ClosedRequestSerializer, instance))


@receiver(post_save, sender=domain.Message, dispatch_uid="publish-message")
def _on_message(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        publish_event(
            instance.project_id,
            events.names_for_message(instance.channel_name),
            payload_of(api.MessageSerializer, instance),
        )


@receiver(post_save, sender=domain.Event, dispatch_uid="publish-emitted-event")
def _on_emitted(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        publish_event(
            instance.project_id, events.names_for_emitted(instance.name), payload_of(api.EventSerializer, instance)
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
