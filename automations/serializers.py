"""API representations of automations and runs (Tiledesk-style `id`/`_id`, `createdAt`...)."""

import re

from django.urls import reverse
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from support.serializers import ProjectScopedSerializer, UserIdField

from .actions import HEADER_NAME, HTTP_METHODS
from .answer_headers import cors_origin_problem
from .flow import validate_flow
from .inbound_auth import allowlist_problems, auth_problems
from .models import Automation, Run, Secret
from .project_secrets import MIN_SCRUBBED_LENGTH

SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_SECRET_LENGTH = 8192


def webhook_urls(automation: Automation, request) -> dict[str, str]:
    """Absolute URLs as the caller of the API reached this server."""
    production = reverse("automations:webhook", kwargs={"webhook_id": automation.webhook_id})
    development = reverse("automations:webhook-dev", kwargs={"webhook_id": automation.webhook_id})
    build = request.build_absolute_uri if request is not None else (lambda path: path)
    return {"production_url": build(production), "development_url": build(development)}


class StructuredErrors(ValidationError):
    """A 400 whose body is given as it is: a flow's errors are objects (`path`, `step_id` that may
    be null, `message`), which DRF's ValidationError would turn into strings ("None")."""

    def __init__(self, detail: dict):
        self.detail = detail


class AutomationSerializer(ProjectScopedSerializer):
    flow = serializers.JSONField()
    warnings = serializers.SerializerMethodField()
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
            "cors_origins",
            "auth",
            "ip_allowlist",
            "webhook_id",
            "production_url",
            "development_url",
            "debug_url",
            "warnings",
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

    def get_warnings(self, obj) -> list[dict]:
        """Saved despite them, shown wherever the flow is edited (validate_flow's warnings)."""
        return validate_flow(obj.flow).warnings

    def validate_cors_origins(self, value):
        if not isinstance(value, list) or len(value) > 100:
            raise serializers.ValidationError('A list of origins such as ["https://site.example"], or ["*"].')
        problems = [problem for origin in value if (problem := cors_origin_problem(origin))]
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_auth(self, value):
        names = set(Secret.objects.filter(project=self.context["project"]).values_list("name", flat=True))
        if problems := auth_problems(value, names):
            raise serializers.ValidationError(problems)
        return value

    def validate_ip_allowlist(self, value):
        if problems := allowlist_problems(value):
            raise serializers.ValidationError(problems)
        return value

    def validate_flow(self, value):
        checked = validate_flow(value)
        if checked.errors:
            self._flow_errors = checked.errors
            raise serializers.ValidationError("The flow is not valid.")
        return checked.flow

    @property
    def errors(self):
        errors = super().errors
        if "flow" in errors and getattr(self, "_flow_errors", None):
            errors["flow"] = self._flow_errors
        return errors

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        valid = super().is_valid()
        if not valid and raise_exception:
            raise StructuredErrors(dict(self.errors))
        return valid


class FlowCheckSerializer(serializers.Serializer):
    """The body of the validate endpoint: a flow to check without saving it."""

    flow = serializers.JSONField()


class RunSerializer(ProjectScopedSerializer):
    automation = serializers.CharField(source="automation_id", read_only=True)
    replay_of = serializers.CharField(source="replay_of_id", read_only=True, allow_null=True)

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
            "replay_of",
        )
        read_only_fields = fields


class SecretSerializer(ProjectScopedSerializer):
    """A project secret: `value` is write-only (encrypted at rest, never answered)."""

    value = serializers.CharField(write_only=True, trim_whitespace=False, max_length=MAX_SECRET_LENGTH)

    class Meta:
        model = Secret
        fields = ProjectScopedSerializer.common_fields + ("name", "value")

    def validate_name(self, value: str) -> str:
        if not SECRET_NAME.match(value):
            raise serializers.ValidationError(
                "A name is letters, digits and _, not starting with a digit (e.g. CRM_TOKEN)."
            )
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError("A secret cannot be renamed; create one with the new name.")
        others = Secret.objects.filter(project=self.context["project"], name=value)
        if self.instance is None and others.exists():
            raise serializers.ValidationError("This project already has a secret with this name.")
        return value

    def validate_value(self, value: str) -> str:
        if len(value) < MIN_SCRUBBED_LENGTH:
            raise serializers.ValidationError(
                f"A secret is at least {MIN_SCRUBBED_LENGTH} characters (shorter ones cannot be hidden in runs)."
            )
        return value

    def create(self, validated_data):
        secret = Secret(**{k: v for k, v in validated_data.items() if k != "value"})
        secret.value = validated_data["value"]
        secret.save()
        return secret

    def update(self, instance, validated_data):
        instance.value = validated_data["value"]
        instance.save(update_fields=["encrypted_value", "updated_at"])
        return instance


class ReplaySerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=Run.Mode.choices, default=Run.Mode.DEVELOPMENT)


class TestCallSerializer(serializers.Serializer):
    """What the studio's "Send a test call" sends: a method, headers and a body (JSON)."""

    method = serializers.ChoiceField(choices=[m for m in HTTP_METHODS if m != "OPTIONS"], default="POST")
    headers = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=8192), default=dict)
    body = serializers.JSONField(required=False, allow_null=True)

    def validate_headers(self, value: dict) -> dict:
        bad = [name for name in value if not HEADER_NAME.match(name)]
        if bad:
            raise serializers.ValidationError(f"Not header names: {', '.join(map(repr, bad[:5]))}.")
        return value
