"""The automations API under /api/projects/{project_id}/automations/: owners and admins write,
every member reads (runs included); other projects' automations do not exist (404)."""

from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from support.models import MANAGER_ROLES
from support.permissions import ProjectScopedMixin
from support.views import PROJECT_PERMISSIONS

from .filters import RunFilter
from .flow import validate_flow
from .models import Automation, Run, Secret
from .serializers import AutomationSerializer, FlowCheckSerializer, RunSerializer, SecretSerializer


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
