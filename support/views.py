"""The support domain's REST API, every resource scoped under /api/projects/{project_id}/."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from . import routing, services
from .conversation_serializers import EventSerializer, MessageSerializer, RequestSerializer
from .filters import RequestFilter
from .models import (
    MANAGER_ROLES,
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
from .permissions import ALL_ROLES, HasProjectRole, PeopleOnly, ProjectScopedMixin, is_person, membership_of
from .routing_serializers import AssignSerializer, ParticipantsSerializer, RerouteSerializer
from .serializers import (
    DepartmentSerializer,
    FaqKbSerializer,
    FaqSerializer,
    GroupSerializer,
    LeadSerializer,
    ProjectSerializer,
    ProjectUserSerializer,
    has_another_owner,
)

PROJECT_PERMISSIONS = [IsAuthenticated, HasProjectRole]


class ProjectViewSet(viewsets.ModelViewSet):
    serializer_class = ProjectSerializer
    permission_classes = [IsAuthenticated, PeopleOnly]

    def get_queryset(self):
        return Project.objects.filter(
            project_users__user=self.request.user,
            project_users__status=ProjectUser.Status.ACTIVE,
            deleted_at__isnull=True,
        ).order_by("-created_at")

    def perform_create(self, serializer) -> None:
        user = self.request.user
        with transaction.atomic():
            project = serializer.save(created_by=user)
            ProjectUser.objects.create(
                project=project, user=user, email=user.email or f"{user.pk}@users.invalid", role=Role.OWNER
            )

    def check_object_permissions(self, request, obj) -> None:
        super().check_object_permissions(request, obj)
        membership = membership_of(request.user, obj.pk)
        allowed = {"PUT": (Role.OWNER, Role.ADMIN), "PATCH": (Role.OWNER, Role.ADMIN), "DELETE": (Role.OWNER,)}
        if request.method in allowed and membership.role not in allowed[request.method]:
            self.permission_denied(request, message="Your role in this project may not do this.")

    def perform_destroy(self, instance) -> None:
        services.delete_project(instance)


class ProjectScopedViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    permission_classes = PROJECT_PERMISSIONS


class ProjectUserViewSet(ProjectScopedViewSet):
    queryset = ProjectUser.objects.order_by("created_at")
    serializer_class = ProjectUserSerializer
    filterset_fields = ("role", "status", "user_available")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "membership": self.membership}

    def perform_destroy(self, instance) -> None:
        if instance.role == Role.OWNER:
            if self.membership.role != Role.OWNER:
                self.permission_denied(self.request, message="Only an owner removes an owner.")
            if not has_another_owner(instance):
                raise ValidationError({"role": ["A project keeps at least one owner."]})
        instance.delete()


class GroupViewSet(ProjectScopedViewSet):
    queryset = Group.objects.order_by("created_at")
    serializer_class = GroupSerializer


class DepartmentViewSet(ProjectScopedViewSet):
    queryset = Department.objects.order_by("created_at")
    serializer_class = DepartmentSerializer
    filterset_fields = ("routing",)


class FaqKbViewSet(ProjectScopedViewSet):
    queryset = FaqKb.objects.order_by("created_at")
    serializer_class = FaqKbSerializer
    permission_resource = "faq_kb"


class FaqViewSet(ProjectScopedViewSet):
    queryset = Faq.objects.order_by("created_at")
    serializer_class = FaqSerializer
    filterset_fields = {"faq_kb": ["exact"]}


class LeadViewSet(ProjectScopedViewSet):
    queryset = Lead.objects.order_by("-created_at")
    serializer_class = LeadSerializer
    write_roles = ALL_ROLES
    permission_resource = "lead"


# Actions that route a conversation: they may call the operator.select webhook, which must never run
# inside a database transaction, so they manage their own short transactions (see `dispatch`).
ROUTING_ACTIONS = frozenset({"create", "update", "partial_update", "reroute"})


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class RequestViewSet(ProjectScopedViewSet):
    queryset = Request.objects.select_related("lead", "department").order_by("-created_at")
    serializer_class = RequestSerializer
    write_roles = ALL_ROLES
    # Who sets participants by hand, or deletes a conversation: the project's managers.
    action_roles = {"participants": MANAGER_ROLES, "destroy": MANAGER_ROLES}
    filterset_class = RequestFilter
    permission_resource = "request"

    def dispatch(self, request, *args, **kwargs):
        """Every other action stays one transaction, as ATOMIC_REQUESTS would make it."""
        if getattr(self, "action_map", {}).get(request.method.lower()) in ROUTING_ACTIONS:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def handle_exception(self, exc):
        # DRF marks the innermost open transaction for rollback on an error; give it a savepoint of
        # its own so that it never marks a caller's transaction (a test's) in a non-atomic action.
        with transaction.atomic():
            return super().handle_exception(exc)

    def check_participants_change(self, request, current: list) -> None:
        """Agents change who serves a conversation only through `assign` (under its rules), never by
        writing `participants`; owners and admins may (the serializer checks who)."""
        if self.membership.role in MANAGER_ROLES or not hasattr(request.data, "get"):
            return
        given = request.data.get("participants")
        if given is not None and (not isinstance(given, list) or [str(p) for p in given] != [str(p) for p in current]):
            self.permission_denied(request, message="Agents change participants through assign, not by writing them.")

    def create(self, request, *args, **kwargs):
        self.check_participants_change(request, [])
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation = routing.create_routed(serializer, self.project)
        return Response(self.get_serializer(conversation).data, status=201)

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            conversation = self.get_object()
            self.check_participants_change(request, conversation.participants)
            department_before, operator_before = conversation.department_id, routing.current_operator(conversation)
            serializer = self.get_serializer(conversation, data=request.data, partial=kwargs.get("partial", False))
            serializer.is_valid(raise_exception=True)
            self.perform_update(serializer)
        conversation = serializer.instance
        moved = conversation.department_id != department_before and conversation.status != Request.Status.CLOSED
        if moved:
            conversation = routing.route_safely(conversation, previous_operator_id=operator_before)
        return Response(self.get_serializer(conversation).data)

    @action(detail=True, methods=["post"])
    def reroute(self, request, *args, **kwargs):
        with transaction.atomic():
            conversation = self.get_object()
            given = RerouteSerializer(data=request.data, context=self.get_serializer_context())
            given.is_valid(raise_exception=True)
            if conversation.status == Request.Status.CLOSED:
                raise ValidationError({"status": ["A closed request is not routed."]})
        options = {"previous_operator_id": routing.current_operator(conversation)}
        if "department" in given.validated_data:
            options["department"] = given.validated_data["department"]
        return Response(self.get_serializer(routing.route_safely(conversation, **options)).data)

    @action(detail=True, methods=["post"])
    def assign(self, request, *args, **kwargs):
        conversation = self.get_object()
        given = AssignSerializer(
            data=request.data, context={**self.get_serializer_context(), "conversation": conversation}
        )
        given.is_valid(raise_exception=True)
        if conversation.status == Request.Status.CLOSED:
            raise ValidationError({"status": ["A closed request cannot be assigned."]})
        caller, chosen = str(request.user.pk), given.validated_data["id_user"]
        takes_or_hands_over = chosen == caller or caller in map(str, conversation.participants)
        if self.membership.role not in (Role.OWNER, Role.ADMIN) and not takes_or_hands_over:
            self.permission_denied(request, message="An agent takes a request or hands over their own.")
        return Response(self.get_serializer(routing.assign(conversation, chosen, caller)).data)

    @action(detail=True, methods=["post"])
    def close(self, request, *args, **kwargs):
        closed = services.close_request(self.get_object())
        return Response(self.get_serializer(closed).data)

    @extend_schema(request=ParticipantsSerializer, responses={200: RequestSerializer})
    @action(detail=True, methods=["put"])
    def participants(self, request, *args, **kwargs):
        """Set who takes part in the conversation: eligible teammates of its department or the
        project's bots (`bot_<id>`); an empty list leaves it unassigned (pooled). Owners and admins,
        and a subscription acting with its envelope's token."""
        conversation = self.get_object()
        context = {**self.get_serializer_context(), "conversation": conversation}
        given = ParticipantsSerializer(data=self.participants_body(request), context=context)
        given.is_valid(raise_exception=True)
        by = services.author_of(request.user).id
        updated = services.set_participants(conversation, given.validated_data["participants"], by)
        return Response(self.get_serializer(updated).data)

    def participants_body(self, request):
        """The participants as given: `{"participants": [...]}` here."""
        return request.data


class MessageViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Messages of one conversation: /requests/{request_pk}/messages/."""

    serializer_class = MessageSerializer
    permission_classes = PROJECT_PERMISSIONS
    write_roles = ALL_ROLES
    permission_resource = "message"
    # The URL names the conversation by this field (its id here, its request_id on Tiledesk's paths).
    conversation_lookup = "pk"

    def get_conversation(self) -> Request:
        """With the lead and department a message's `request` shows."""
        conversations = Request.objects.select_related("lead", "department")
        lookup = {self.conversation_lookup: self.kwargs["request_pk"]}
        return get_object_or_404(conversations, project=self.project, **lookup)

    def get_queryset(self):
        return (
            Message.objects.filter(request=self.get_conversation())
            .select_related("request__lead", "request__department")
            .order_by("created_at")
        )

    def perform_create(self, serializer) -> None:
        services.post_message(serializer, self.get_conversation(), services.author_of(self.request.user))


class EventViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Event.objects.order_by("-created_at")
    serializer_class = EventSerializer
    permission_classes = PROJECT_PERMISSIONS
    write_roles = ALL_ROLES
    filterset_fields = ("name",)
    permission_resource = "event"

    def perform_create(self, serializer) -> None:
        caller = self.request.user
        services.emit_event(serializer, self.project, created_by=caller if is_person(caller) else None)
