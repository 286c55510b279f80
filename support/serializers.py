"""API representations of the support domain, shaped like Tiledesk's (string `id` and `_id`,
`createdAt`/`updatedAt`, `id_project`). An event's payload is exactly one of these."""

from functools import cache

from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from .models import (
    Department,
    Faq,
    FaqKb,
    Group,
    Lead,
    Project,
    ProjectUser,
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
    hasBot = serializers.SerializerMethodField()

    class Meta:
        model = Department
        fields = ProjectScopedSerializer.common_fields + ("name", "routing", "id_bot", "id_group", "default", "hasBot")

    def get_hasBot(self, obj) -> bool:
        """Tiledesk's virtual of the same name: whether the department has a bot."""
        return obj.bot_id is not None

    def validate(self, attrs):
        routing = attrs.get("routing", getattr(self.instance, "routing", Department.Routing.ASSIGNED))
        bot = attrs.get("bot", getattr(self.instance, "bot", None))
        if routing == Department.Routing.FIXED and bot is None:
            raise serializers.ValidationError({"id_bot": ["Fixed routing needs a bot (id_bot)."]})
        return attrs


class LeadSerializer(ProjectScopedSerializer):
    lead_id = serializers.CharField(max_length=200, required=False)
    email = serializers.EmailField(required=False, allow_blank=True)
    attributes = serializers.JSONField(required=False)

    class Meta:
        model = Lead
        fields = ProjectScopedSerializer.common_fields + ("lead_id", "fullname", "email", "attributes")

    def validate_lead_id(self, value: str) -> str:
        if self.instance is not None and value != self.instance.lead_id:
            raise serializers.ValidationError("A lead's lead_id cannot be changed.")
        return value

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


@cache
def _representer(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


def represent(serializer_class: type[serializers.Serializer], instance) -> dict:
    """An object as its own serializer gives it, without a caller (an event's payload, a request's
    lead, department, participating teammates and bots), through one serializer per class:
    building a ModelSerializer's fields is most of its cost (cProfile: 60 % of a request payload),
    and representing an object reads nothing from the context and changes nothing in the
    serializer, as a list's one child serializer shows for every row."""
    return _representer(serializer_class).to_representation(instance)
