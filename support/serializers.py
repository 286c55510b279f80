"""API representations of the support domain, shaped like Tiledesk's (string `id` and `_id`,
`createdAt`/`updatedAt`, `id_project`). An event's payload is exactly one of these."""

import uuid

from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from .models import (
    Department,
    Event,
    Faq,
    FaqKb,
    Group,
    Lead,
    Message,
    Project,
    ProjectUser,
    Request,
    Role,
)

User = get_user_model()


class DomainSerializer(serializers.ModelSerializer):
    """Adds the Tiledesk-style identity and timestamps every resource carries."""

    id = serializers.CharField(read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    common_fields = ("id", "createdAt", "updatedAt")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return {"_id": data["id"], **data}

    @property
    def project(self) -> Project:
        return self.context["project"]


class ProjectScopedSerializer(DomainSerializer):
    id_project = serializers.CharField(source="project_id", read_only=True)

    common_fields = DomainSerializer.common_fields + ("id_project",)


class InProjectField(serializers.PrimaryKeyRelatedField):
    """A reference by id to another object of the same project; other projects' ids do not exist."""

    def get_queryset(self):
        return self.queryset.filter(project=self.context["project"])

    def to_representation(self, value):
        return str(value.pk)


class UserIdField(serializers.Field):
    """A user id (read from an `*_id` attribute, without a query) as a string, as Tiledesk
    clients expect it."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return str(value)


class ProjectSerializer(DomainSerializer):
    createdBy = UserIdField(source="created_by_id", read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = DomainSerializer.common_fields + ("name", "createdBy", "role")

    def get_role(self, obj) -> str | None:
        request = self.context.get("request")
        if not request or not request.user.is_authenticated:
            return None
        membership = obj.project_users.filter(user=request.user).first()
        return membership.role if membership else None


class ProjectUserSerializer(ProjectScopedSerializer):
    id_user = serializers.SerializerMethodField()
    email = serializers.EmailField()

    class Meta:
        model = ProjectUser
        fields = ProjectScopedSerializer.common_fields + (
            "id_user",
            "email",
            "role",
            "user_available",
            "max_assigned_chat",
            "status",
        )
        read_only_fields = ("status",)

    def get_id_user(self, obj) -> str | None:
        return str(obj.user_id) if obj.user_id else None

    def validate_email(self, value: str) -> str:
        if self.instance is not None and value.lower() != self.instance.email.lower():
            raise serializers.ValidationError("A teammate's e-mail cannot be changed; invite the new address.")
        duplicates = ProjectUser.objects.filter(project=self.project, email__iexact=value)
        if self.instance is None and duplicates.exists():
            raise serializers.ValidationError("This e-mail is already a teammate or invited.")
        return value

    def validate_role(self, value: str) -> str:
        caller = self.context.get("membership")
        if value == Role.OWNER and caller is not None and caller.role != Role.OWNER:
            raise serializers.ValidationError("Only an owner can make someone an owner.")
        if self.instance is not None and self.instance.role == Role.OWNER and value != Role.OWNER:
            if caller is not None and caller.role != Role.OWNER:
                raise PermissionDenied("Only an owner changes an owner's role.")
            if not has_another_owner(self.instance):
                raise serializers.ValidationError("A project keeps at least one owner.")
        return value

    def create(self, validated_data):
        user = User.objects.filter(email__iexact=validated_data["email"]).first()
        if user is not None and ProjectUser.objects.filter(project=self.project, user=user).exists():
            raise serializers.ValidationError({"email": ["This user is already a teammate."]})
        validated_data["user"] = user
        validated_data["status"] = ProjectUser.Status.ACTIVE if user else ProjectUser.Status.INVITED
        return super().create(validated_data)


def has_another_owner(membership: ProjectUser) -> bool:
    """Whether the project has an active owner besides `membership`. The owners stay locked until the
    transaction ends: of two owners demoting each other at the same moment, the second waits, then
    finds no other owner left."""
    owners = ProjectUser.objects.select_for_update().filter(
        project_id=membership.project_id, role=Role.OWNER, status=ProjectUser.Status.ACTIVE, user__isnull=False
    )
    return any(pk != membership.pk for pk in owners.values_list("pk", flat=True))


class GroupSerializer(ProjectScopedSerializer):
    members = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        model = Group
        fields = ProjectScopedSerializer.common_fields + ("name", "members")

    def validate_members(self, value: list[str]) -> list[str]:
        teammates = {
            str(pk)
            for pk in ProjectUser.objects.filter(project=self.project, user__isnull=False).values_list(
                "user_id", flat=True
            )
        }
        strangers = [member for member in value if member not in teammates]
        if strangers:
            raise serializers.ValidationError(f"Not teammates of this project: {', '.join(strangers)}.")
        return list(dict.fromkeys(value))


class FaqKbSerializer(ProjectScopedSerializer):
    class Meta:
        model = FaqKb
        fields = ProjectScopedSerializer.common_fields + ("name", "description")


class FaqSerializer(ProjectScopedSerializer):
    id_faq_kb = InProjectField(source="faq_kb", queryset=FaqKb.objects.all())

    class Meta:
        model = Faq
        fields = ProjectScopedSerializer.common_fields + ("id_faq_kb", "question", "answer")


class DepartmentSerializer(ProjectScopedSerializer):
    id_bot = InProjectField(source="bot", queryset=FaqKb.objects.all(), required=False, allow_null=True)
    id_group = InProjectField(source="group", queryset=Group.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Department
        fields = ProjectScopedSerializer.common_fields + ("name", "routing", "id_bot", "id_group", "default")

    def validate(self, attrs):
        routing = attrs.get("routing", getattr(self.instance, "routing", Department.Routing.ASSIGNED))
        bot = attrs.get("bot", getattr(self.instance, "bot", None))
        if routing == Department.Routing.FIXED and bot is None:
            raise serializers.ValidationError({"id_bot": ["Fixed routing needs a bot (id_bot)."]})
        return attrs


class LeadSerializer(ProjectScopedSerializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    attributes = serializers.JSONField(required=False)

    class Meta:
        model = Lead
        fields = ProjectScopedSerializer.common_fields + ("fullname", "email", "attributes")

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


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
    """A request's requester: an existing lead's id, or `{"fullname", "email"?}` for a new one."""

    def to_representation(self, value):
        return LeadSerializer(value, context=self.context).data

    def to_internal_value(self, data):
        project = self.context["project"]
        if isinstance(data, str):
            lead = Lead.objects.filter(project=project, pk=data).first()
            if lead is None:
                raise serializers.ValidationError(f"No lead with id {data!r} in this project.")
            return lead
        if isinstance(data, dict):
            nested = LeadSerializer(data=data, context=self.context)
            nested.is_valid(raise_exception=True)
            return nested.validated_data
        raise serializers.ValidationError('Must be a lead id or an object like {"fullname": "Ann"}.')


class JSONObjectField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class RequestSerializer(ProjectScopedSerializer):
    lead = LeadReferenceField()
    department = InProjectField(queryset=Department.objects.all(), required=False, allow_null=True)
    channel = ChannelField(source="channel_name", required=False)
    attributes = JSONObjectField(required=False)
    participants = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    sourcePage = serializers.CharField(source="source_page", required=False, allow_blank=True)

    class Meta:
        model = Request
        fields = ProjectScopedSerializer.common_fields + (
            "request_id",
            "status",
            "first_text",
            "lead",
            "department",
            "participants",
            "channel",
            "closed_at",
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


class MessageSerializer(ProjectScopedSerializer):
    request = serializers.CharField(source="request_id", read_only=True)
    recipient = serializers.CharField(source="request.request_id", read_only=True)
    sender = serializers.CharField(required=False, max_length=200)
    senderFullname = serializers.CharField(source="sender_fullname", required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    channel = ChannelField(source="channel_name", read_only=True)
    attributes = JSONObjectField(required=False)

    class Meta:
        model = Message
        fields = ProjectScopedSerializer.common_fields + (
            "request",
            "recipient",
            "sender",
            "senderFullname",
            "text",
            "type",
            "channel",
            "attributes",
        )

    def validate(self, attrs):
        if not attrs.get("text") and attrs.get("type", "text") == "text":
            raise serializers.ValidationError({"text": ["A text message needs text."]})
        return attrs


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
