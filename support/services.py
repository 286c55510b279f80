"""The support domain's operations on a project's conversations and the project itself.

The API, Tiledesk's own paths and automations all come here to post a message, close a
conversation, set who takes part, emit an event or delete a project, so that every way in changes
the same rows the same way and so publishes the same events (the webhook layer listens to the
models' signals and to `support.signals`)."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import Event, Message, Project, Request
from .permissions import ProjectCaller


@dataclass(frozen=True)
class Author:
    """Who a message is from, unless the message names its sender itself."""

    id: str
    name: str


def author_of(caller) -> Author:
    """A person: their user id and name. A `ProjectCaller`: what it says its messages are from."""
    if isinstance(caller, ProjectCaller):
        return Author(caller.author_id, caller.author_name)
    return Author(str(caller.pk), caller.get_full_name() or caller.get_username())


def post_message(serializer, conversation: Request, author: Author) -> Message:
    """Save a validated `MessageSerializer` as a message of `conversation`, on its channel."""
    given = serializer.validated_data
    return serializer.save(
        project=conversation.project,
        request=conversation,
        channel_name=conversation.channel_name,
        sender=given.get("sender") or author.id,
        sender_fullname=given.get("sender_fullname") or author.name,
    )


def emit_event(serializer, project: Project, created_by=None) -> Event:
    """Save a validated `EventSerializer` as an event emitted in `project` (by a person, if any)."""
    return serializer.save(project=project, created_by=created_by)


def close_request(request: Request) -> Request:
    """Close a conversation and announce it with `request_closed` (not `post_save`), so that
    listeners can tell a close from an ordinary update."""
    from .signals import request_closed

    if request.status == Request.Status.CLOSED:
        return request
    now = timezone.now()
    Request.objects.filter(pk=request.pk).update(status=Request.Status.CLOSED, closed_at=now, updated_at=now)
    request.refresh_from_db()
    request_closed.send(sender=Request, instance=request)
    return request


def set_participants(request: Request, participants: list[str], by: str) -> Request:
    """Who takes part in a conversation from now on (user ids, `bot_<id>`), as Tiledesk's
    `setParticipantsByRequestId` sets them: assigned when someone does, unassigned (pooled) when
    nobody does, and nothing saved (so nothing published) when they are the same already. The
    caller checks who may take part."""
    with transaction.atomic():
        rows = Request.objects.select_for_update(of=("self",)).select_related("lead", "department")
        current = rows.get(pk=request.pk)
        if current.status == Request.Status.CLOSED:
            raise ValidationError({"status": ["A closed request has no participants to change."]})
        if [str(p) for p in current.participants] == participants:
            return current
        current.participants = participants
        current.status = Request.Status.ASSIGNED if participants else Request.Status.POOLED
        current.routing_reason = f"participants set by {by}"[:300]
        current.save()
    return current


def delete_project(project: Project) -> Project:
    """Delete a project as its owner does: it is closed at once (404 for every caller) and announced
    with `project_deleted`, in one transaction. Its rows stay for whoever still needs them (events
    about it may still have to be sent); that listener erases the project once done."""
    from .signals import project_deleted

    with transaction.atomic():
        now = timezone.now()
        if not Project.objects.filter(pk=project.pk, deleted_at__isnull=True).update(deleted_at=now):
            return project  # deleted already
        project.deleted_at = now
        project_deleted.send(sender=Project, instance=project)
    return project
