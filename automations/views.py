"""The automations API under /api/projects/{project_id}/automations/: owners and admins write,
every member reads (runs included); other projects' automations do not exist (404)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from support.models import MANAGER_ROLES
from support.permissions import ProjectScopedMixin
from support.views import PROJECT_PERMISSIONS

from . import replay
from .filters import RunFilter
from .flow import validate_flow
from .inbound import InboundRefused
from .models import Automation, Run, Secret
from .serializers import (
    AutomationSerializer,
    FlowCheckSerializer,
    ReplaySerializer,
    RunSerializer,
    SecretSerializer,
    TestCallSerializer,
)


class AutomationViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    queryset = Automation.objects.order_by("-created_at")
    serializer_class = AutomationSerializer
    permission_classes = PROJECT_PERMISSIONS
    filterset_fields = ("enabled",)

    def perform_create(self, serializer) -> None:
        serializer.save(project=self.project, created_by=self.request.user)

    @action(detail=False, methods=["post"])
    def validate(self, request, project_id=None):
        """The checks of a save, without saving: errors (the flow would be refused) and warnings."""
        body = FlowCheckSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        checked = validate_flow(body.validated_data["flow"])
        return Response({"errors": checked.errors, "warnings": checked.warnings})

    @action(detail=True, methods=["post"])
    def regenerate(self, request, project_id=None, pk=None):
        """A new webhook id: the old production and development URLs stop at once."""
        automation = self.get_object()
        automation.regenerate_webhook_id()
        return Response(self.get_serializer(automation).data)

    @action(detail=True, methods=["get"])
    def runs(self, request, project_id=None, pk=None):
        automation = self.get_object()
        queryset = Run.objects.filter(automation=automation).order_by("-created_at", "-id")
        filterset = RunFilter(request.query_params, queryset=queryset)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(RunSerializer(page, many=True, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[OpenApiParameter("run_id", str, OpenApiParameter.PATH, description="The run to replay.")]
    )
    @action(detail=True, methods=["post"], url_path=r"runs/(?P<run_id>[^/.]+)/replay")
    def replay(self, request, project_id=None, pk=None, run_id=None):
        """The recorded call again, against the flow as it is now; the new run says `replay_of`."""
        automation = self.get_object()
        original = Run.objects.filter(automation=automation, pk=run_id).first()
        if original is None:
            raise NotFound("No such run of this automation.")
        body = ReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = replay.replay(original, automation, body.validated_data["mode"])
        except InboundRefused as refused:
            raise ValidationError({"detail": [refused.detail]}) from None
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def test_call(self, request, project_id=None, pk=None):
        """A development run of the call described, made for the signed-in member (no inbound auth)."""
        automation = self.get_object()
        body = TestCallSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        call = body.validated_data
        try:
            run = replay.test_call(automation, call["method"], call["headers"], call.get("body"))
        except InboundRefused as refused:
            raise ValidationError({"body": [refused.detail]}) from None
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)


class SecretViewSet(ProjectScopedMixin, viewsets.ModelViewSet):
    """A project's secrets by name: owners and admins only (agents 403), values never answered."""

    queryset = Secret.objects.order_by("name")
    serializer_class = SecretSerializer
    permission_classes = PROJECT_PERMISSIONS
    read_roles = MANAGER_ROLES
    write_roles = MANAGER_ROLES
    lookup_field = "name"
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def update(self, request, *args, **kwargs):
        """PUT replaces the value; the name comes from the URL."""
        instance = self.get_object()
        sent = request.data if hasattr(request.data, "get") else {}
        serializer = self.get_serializer(instance, data={"name": instance.name, "value": sent.get("value")})
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)
