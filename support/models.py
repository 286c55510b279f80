"""The support domain: the things whose changes are published as events.

These models know nothing about webhooks. The webhook layer listens to their Django signals
(post_save/post_delete, and the domain signals in `support.signals`)."""

from django.conf import settings
from django.db import models

from .ids import new_lead_id, new_object_id


def object_id_field() -> models.CharField:
    return models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)


class Timestamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Project(Timestamped):
    id = object_id_field()
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # Set by `delete_project`: the project is gone for every caller from then on, and its rows are
    # erased once the webhook layer has nothing left to send for it.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    AGENT = "agent"


MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


class ProjectUser(Timestamped):
    """A teammate: a user's membership of a project, or a pending invitation by e-mail."""

    class Status(models.TextChoices):
        INVITED = "invited"
        ACTIVE = "active"

    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="project_users")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    user_available = models.BooleanField(default=True)
    max_assigned_chat = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user"),
            models.UniqueConstraint(fields=["project", "email"], name="one_invitation_per_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.role}) in {self.project_id}"


class Group(Timestamped):
    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=200)
    # User ids as strings, as Tiledesk stores them (one row write, so one event per change).
    members = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.name


class FaqKb(Timestamped):
    """A bot (Tiledesk's "faq_kb")."""

    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "bot (faq_kb)"
        verbose_name_plural = "bots (faq_kb)"

    def __str__(self) -> str:
        return self.name


class Faq(Timestamped):
    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="faqs")
    faq_kb = models.ForeignKey(FaqKb, on_delete=models.CASCADE, related_name="faqs")
    question = models.TextField()
    answer = models.TextField()

    def __str__(self) -> str:
        return self.question[:60]


class Department(Timestamped):
    class Routing(models.TextChoices):
        ASSIGNED = "assigned"
        POOLED = "pooled"
        FIXED = "fixed"

    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(max_length=200)
    routing = models.CharField(max_length=10, choices=Routing.choices, default=Routing.ASSIGNED)
    bot = models.ForeignKey(FaqKb, on_delete=models.SET_NULL, null=True, blank=True, related_name="departments")
    group = models.ForeignKey(Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="departments")
    default = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class Lead(Timestamped):
    """A requester. `lead_id` is Tiledesk's name for the requester's own id in the channel it
    writes from (a widget visitor's uuid, a phone number...): given by the client, else a uuid."""

    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="leads")
    lead_id = models.CharField(max_length=200, default=new_lead_id)
    fullname = models.CharField(max_length=200)
    email = models.EmailField(blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "lead_id"], name="lead_by_lead_id")]

    def __str__(self) -> str:
        return self.fullname


class Request(Timestamped):
    """A conversation."""

    class Status(models.IntegerChoices):
        """Tiledesk's numbers (`requestConstants.js`), so that filters and receivers written for
        Tiledesk read the same values. TEMP is a conversation created but not routed yet: while
        `operator.select` is asked, or when routing failed (Tiledesk's state before its routing)."""

        TEMP = 50, "temp (not routed yet)"
        POOLED = 100, "unassigned (pooled)"
        ASSIGNED = 200, "assigned"
        CLOSED = 1000, "closed"

    class RoutedBy(models.TextChoices):
        BUILTIN = "builtin"
        WEBHOOK = "webhook"

    id = object_id_field()
    request_id = models.CharField(max_length=120, unique=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="requests")
    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="requests")
    first_text = models.TextField()
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    status = models.PositiveSmallIntegerField(choices=Status.choices, default=Status.TEMP, db_index=True)
    participants = models.JSONField(default=list, blank=True)
    channel_name = models.CharField(max_length=60, default="chat21")
    source_page = models.CharField(max_length=2000, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    routed_by = models.CharField(max_length=10, choices=RoutedBy.choices, blank=True, default="")
    routing_reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        # Routing reads both for every new conversation (support/routing.py): the project's open
        # conversations, and its most recently changed ones.
        indexes = [
            models.Index(fields=["project", "status"], name="request_status_idx"),
            models.Index(fields=["project", "-updated_at", "-id"], name="request_recency_idx"),
        ]

    def __str__(self) -> str:
        return self.request_id

    @property
    def channel_outbound_name(self) -> str:
        """Tiledesk's outbound channel: the one the conversation's own messages (bots, notices) go
        out on, whatever channel the requester writes from. There is only chat21 here."""
        return "chat21"


class Message(Timestamped):
    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="messages")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=200)
    sender_fullname = models.CharField(max_length=200, blank=True, default="")
    text = models.TextField(blank=True, default="")
    type = models.CharField(max_length=30, default="text")
    channel_name = models.CharField(max_length=60, default="chat21")
    attributes = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.text[:60]


class Event(Timestamped):
    """An emitted event, such as `typing.start`."""

    id = object_id_field()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=200)
    attributes = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return self.name
