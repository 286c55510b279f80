"""API representations of automations and runs (Tiledesk-style `id`/`_id`, `createdAt`...)."""

from django.urls import reverse
from rest_framework import serializers

from support.serializers import ProjectScopedSerializer, UserIdField

from .flow import validate_flow
from .models import Automation, Run


def webhook_urls(automation: Automation, request) -> dict[str, str]:
    """Absolute URLs as the caller of the API reached this server."""
    production = reverse("automations:webhook", kwargs={"webhook_id": automation.webhook_id})
    development = reverse("automations:webhook-dev", kwargs={"webhook_id": automation.webhook_id})
    build = request.build_absolute_uri if request is not None else (lambda path: path)
    return {"production_url": build(production), "development_url": build(development)}


class AutomationSerializer(ProjectScopedSerializer):
    flow = serializers.JSONField()
    webhook_id = serializers.CharField(read_only=True)
    production_url = serializers.SerializerMethodField()
    development_url = serializers.SerializerMethodField()
    debug_url = serializers.SerializerMethodField()
    createdBy = UserIdField(source="created_by_id", read_only=True)

    class Meta:
        model = Automation
        fields = ProjectScopedSerializer.common_fields + (
            "name",
            "enabled",
            "flow",
            "webhook_id",
            "production_url",
            "development_url",
            "debug_url",
            "createdBy",
        )

    def get_production_url(self, obj) -> str:
        return webhook_urls(obj, self.context.get("request"))["production_url"]

    def get_development_url(self, obj) -> str:
        return webhook_urls(obj, self.context.get("request"))["development_url"]

    def get_debug_url(self, obj) -> str:
        path = reverse("automations:debug", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def validate_flow(self, value):
        checked = validate_flow(value)
        if checked.problems:
            raise serializers.ValidationError(checked.problems)
        return checked.flow


class RunSerializer(ProjectScopedSerializer):
    automation = serializers.CharField(source="automation_id", read_only=True)

    class Meta:
        model = Run
        fields = ProjectScopedSerializer.common_fields + (
            "automation",
            "mode",
            "status",
            "method",
            "query",
            "headers",
            "content_type",
            "body",
            "body_truncated",
            "error",
            "response",
            "trace",
            "finished_at",
            "duration_ms",
        )
        read_only_fields = fields
