"""The conversation side of the API (requests, messages, events) and the fields that shape them as
Tiledesk's server does: a request's lead, department and participants populated as objects, a
channel as `{"name"}`. Each event's payload is one of these or one of `serializers.py`'s."""

import uuid
from collections import defaultdict
from functools import cached_property

from django.contrib.auth import get_user_model
from rest_framework import serializers

from .models import Department, Event, FaqKb, Lead, Message, ProjectUser, Request
from .routing import BOT_PREFIX
from .serializers import (
    DepartmentSerializer,
    FaqKbSerializer,
    InProjectField,
    LeadSerializer,
    ProjectScopedSerializer,
    UserIdField,
    represent,
)

User = get_user_model()


class ChannelField(serializers.Field):
    """`{"name": "telegram"}` in and out, a plain channel name inside."""

    def to_representation(self, value):
        return {"name": value}

    def to_internal_value(self, data):
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise serializers.ValidationError('Must be an object like {"name": "chat21"}.')
        return name.strip()


class LeadReferenceField(serializers.Field):
    """A request's requester, the lead object out. In: an existing lead's id; the lead object a client
    was given (its `_id` or `id`); an object whose `lead_id` an existing lead of the project has
    (that lead, unchanged: Tiledesk finds a requester by its `lead_id` the same way); or
    `{"fullname", "email"?, "lead_id"?}` for a new lead."""

    def to_representation(self, value):
        return represent(LeadSerializer, value)

    def to_internal_value(self, data):
        project = self.context["project"]
        if isinstance(data, dict) and (data.get("_id") or data.get("id")):
            data = data.get("_id") or data.get("id")
        if isinstance(data, str):
            lead = Lead.objects.filter(project=project, pk=data).first()
            if lead is None:
                raise serializers.ValidationError(f"No lead with id {data!r} in this project.")
            return lead
        if isinstance(data, dict):
            nested = LeadSerializer(data=data, context=self.context)
            nested.is_valid(raise_exception=True)
            lead_id = nested.validated_data.get("lead_id")
            known = lead_id and Lead.objects.filter(project=project, lead_id=lead_id).order_by("created_at").first()
            return known or nested.validated_data
        raise serializers.ValidationError('Must be a lead id or an object like {"fullname": "Ann"}.')


class DepartmentReferenceField(InProjectField):
    """A request's department: the department object out, as Tiledesk populates it. In: its id, or
    the object a client was given back (its `_id` or `id`)."""

    def use_pk_only_optimization(self) -> bool:
        return False

    def to_representation(self, value):
        return represent(DepartmentSerializer, value)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = data.get("_id") or data.get("id")
            if not isinstance(data, str):
                raise serializers.ValidationError('Must be a department id or an object with its "_id".')
        return super().to_internal_value(data)

    def get_choices(self, cutoff=None):
        """Choices keyed by id (the browsable API's form), not by the object."""
        queryset = self.get_queryset()
        if cutoff is not None:
            queryset = queryset[:cutoff]
        return {str(item.pk): self.display_value(item) for item in queryset}


class JSONObjectField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


def split_participants(participants: list) -> tuple[list[str], list[str]]:
    """Tiledesk's `participantsAgents` (user ids) and `participantsBots` (bot ids, without the
    `bot_` prefix a participant carries)."""
    agents, bots = [], []
    for participant in map(str, participants or ()):
        if participant.startswith(BOT_PREFIX):
            bots.append(participant.removeprefix(BOT_PREFIX))
        else:
            agents.append(participant)
    return agents, bots


class ParticipatingAgentSerializer(serializers.Serializer):
    """A teammate among a request's participants, shaped like the user Tiledesk populates in
    `participatingAgents`."""

    _id = serializers.SerializerMethodField()
    id = serializers.SerializerMethodField()
    email = serializers.EmailField()
    firstname = serializers.CharField(source="first_name")
    lastname = serializers.CharField(source="last_name")

    def get__id(self, user) -> str:
        return str(user.pk)

    def get_id(self, user) -> str:
        return str(user.pk)


class Participating:
    """The teammates and bots that requests' participants name, read once for a whole page of
    requests (or every message of a conversation) rather than twice per request. Only a project's
    own teammates and bots count."""

    def __init__(self) -> None:
        # (project id, user or bot id) -> the object, or None when it names no one of the project
        self.users: dict[tuple[str, str], object] = {}
        self.bots: dict[tuple[str, str], FaqKb | None] = {}

    def load(self, requests) -> None:
        users, bots = defaultdict(set), defaultdict(set)
        for request in requests:
            agent_ids, bot_ids = split_participants(request.participants)
            pid = request.project_id
            users[pid].update(uid for uid in agent_ids if uid.isdigit() and (pid, uid) not in self.users)
            bots[pid].update(bid for bid in bot_ids if (pid, bid) not in self.bots)
        for pid, ids in users.items():
            if ids:  # one membership per user and project: no duplicates
                found = {str(user.pk): user for user in User.objects.filter(pk__in=ids, memberships__project_id=pid)}
                self.users.update({(pid, uid): found.get(uid) for uid in ids})
        for pid, ids in bots.items():
            if ids:
                found = {bot.pk: bot for bot in FaqKb.objects.filter(project_id=pid, pk__in=ids)}
                self.bots.update({(pid, bid): found.get(bid) for bid in ids})

    def agents_of(self, request) -> list:
        self.load([request])  # nothing to read when a page was loaded already
        agent_ids = split_participants(request.participants)[0]
        return [user for uid in agent_ids if (user := self.users.get((request.project_id, uid))) is not None]

    def bots_of(self, request) -> list[FaqKb]:
        self.load([request])
        bot_ids = split_participants(request.participants)[1]
        return [bot for bid in bot_ids if (bot := self.bots.get((request.project_id, bid))) is not None]


class ParticipatingField(serializers.Field):
    """`participatingAgents` or `participatingBots`: the participants as objects (Tiledesk's
    populated virtuals)."""

    def __init__(self, kind: str, **kwargs):
        self.kind = kind
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, request):
        participating = self.parent.participating
        if self.kind == "agents":
            return [represent(ParticipatingAgentSerializer, user) for user in participating.agents_of(request)]
        return [represent(FaqKbSerializer, bot) for bot in participating.bots_of(request)]


class RequestListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        self.child.participating.load(rows)
        return super().to_representation(rows)


class RequestSerializer(ProjectScopedSerializer):
    """A conversation, in the fields and types Tiledesk's server sends (its `models/request.js` with
    `lead`, `department`, `participatingAgents` and `participatingBots` populated)."""

    lead = LeadReferenceField()
    requester_id = serializers.CharField(source="lead_id", read_only=True)
    department = DepartmentReferenceField(queryset=Department.objects.all(), required=False, allow_null=True)
    channel = ChannelField(source="channel_name", required=False)
    channelOutbound = ChannelField(source="channel_outbound_name", read_only=True)
    attributes = JSONObjectField(required=False)
    participants = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    participantsAgents = serializers.SerializerMethodField()
    participantsBots = serializers.SerializerMethodField()
    participatingAgents = ParticipatingField("agents")
    participatingBots = ParticipatingField("bots")
    hasBot = serializers.SerializerMethodField()
    duration = serializers.SerializerMethodField()
    sourcePage = serializers.CharField(source="source_page", required=False, allow_blank=True)

    class Meta:
        model = Request
        list_serializer_class = RequestListSerializer
        fields = ProjectScopedSerializer.common_fields + (
            "request_id",
            "status",
            "first_text",
            "lead",
            "requester_id",
            "department",
            "participants",
            "participantsAgents",
            "participantsBots",
            "participatingAgents",
            "participatingBots",
            "hasBot",
            "channel",
            "channelOutbound",
            "closed_at",
            "duration",
            "attributes",
            "sourcePage",
            "routed_by",
            "routing_reason",
        )
        read_only_fields = ("request_id", "status", "closed_at", "routed_by", "routing_reason")

    def validate_participants(self, value: list[str]) -> list[str]:
        """Only the project's active teammates (user ids) and its bots (`bot_<id>`) can take part;
        ones already taking part may stay."""
        chosen = list(dict.fromkeys(value))
        current = {str(p) for p in (self.instance.participants if self.instance is not None else ())}
        teammates = ProjectUser.objects.filter(
            project=self.project, status=ProjectUser.Status.ACTIVE, user__isnull=False
        )
        allowed = {str(pk) for pk in teammates.values_list("user_id", flat=True)}
        allowed |= {f"bot_{pk}" for pk in FaqKb.objects.filter(project=self.project).values_list("pk", flat=True)}
        strangers = [p for p in chosen if p not in allowed and p not in current]
        if strangers:
            raise serializers.ValidationError(
                f"Neither active teammates nor bots (bot_<id>) of this project: {', '.join(strangers)}."
            )
        return chosen

    @cached_property
    def participating(self) -> Participating:
        return Participating()

    def get_participantsAgents(self, obj) -> list[str]:
        return split_participants(obj.participants)[0]

    def get_participantsBots(self, obj) -> list[str]:
        return split_participants(obj.participants)[1]

    def get_hasBot(self, obj) -> bool:
        return bool(split_participants(obj.participants)[1])

    def get_duration(self, obj) -> int | None:
        """Milliseconds from creation to close, as Tiledesk records it on close; null while open."""
        if obj.closed_at is None:
            return None
        return int((obj.closed_at - obj.created_at).total_seconds() * 1000)

    def validate(self, attrs):
        if self.instance is not None and "lead" in attrs and not isinstance(attrs["lead"], Lead):
            raise serializers.ValidationError({"lead": ["Give an existing lead's id to change the requester."]})
        return attrs

    def create(self, validated_data):
        lead = validated_data.pop("lead")
        if not isinstance(lead, Lead):
            lead = Lead.objects.create(project=validated_data["project"], **lead)
        validated_data.setdefault("channel_name", "chat21")
        if "department" not in validated_data:
            validated_data["department"] = (
                Department.objects.filter(project=validated_data["project"]).order_by("-default", "created_at").first()
            )
        request_id = f"support-group-{validated_data['project'].pk}-{uuid.uuid4().hex}"
        return Request.objects.create(lead=lead, request_id=request_id, **validated_data)


class MessageRowSerializer(ProjectScopedSerializer):
    """A message as a plain row, the shape of `request.close`'s `messages` (Tiledesk's stored
    message: `recipient` is the conversation's `request_id`)."""

    recipient = serializers.CharField(source="request.request_id", read_only=True)
    sender = serializers.CharField(required=False, max_length=200)
    senderFullname = serializers.CharField(source="sender_fullname", required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    channel_type = serializers.SerializerMethodField()
    channel = ChannelField(source="channel_name", read_only=True)
    attributes = JSONObjectField(required=False)

    class Meta:
        model = Message
        fields = ProjectScopedSerializer.common_fields + (
            "recipient",
            "sender",
            "senderFullname",
            "text",
            "type",
            "channel_type",
            "channel",
            "attributes",
        )

    def get_channel_type(self, obj) -> str:
        """Tiledesk's `group` (a conversation's message) as opposed to `direct`; always `group` here."""
        return "group"

    def validate(self, attrs):
        if not attrs.get("text") and attrs.get("type", "text") == "text":
            raise serializers.ValidationError({"text": ["A text message needs text."]})
        return attrs


class MessageSerializer(MessageRowSerializer):
    """A message with its `request`: the request object, as Tiledesk's `message.create` carries it."""

    request = RequestSerializer(read_only=True)

    class Meta(MessageRowSerializer.Meta):
        fields = MessageRowSerializer.Meta.fields + ("request",)


class ClosedRequestSerializer(RequestSerializer):
    """The payload of `request.close`: the request, and its conversation's `messages` oldest first as
    plain rows (Tiledesk's notifier adds them the same way)."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        rows = instance.messages.select_related("request").order_by("created_at", "id")
        data["messages"] = MessageRowSerializer(rows, many=True, context=self.context).data
        return data


class EventSerializer(ProjectScopedSerializer):
    attributes = JSONObjectField(required=False)
    createdBy = UserIdField(source="created_by_id", read_only=True)

    class Meta:
        model = Event
        fields = ProjectScopedSerializer.common_fields + ("name", "attributes", "createdBy")

    def validate_name(self, value: str) -> str:
        if not value.strip() or any(ch.isspace() for ch in value):
            raise serializers.ValidationError("An event name is one word such as typing.start.")
        return value
