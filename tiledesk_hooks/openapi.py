"""drf-spectacular hooks: which endpoints the OpenAPI schema documents, the examples it shows
(openapi_examples.py), the error answers, and the schemas of the custom fields and views."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.utils import extend_schema, extend_schema_view

from subscriptions import events

from . import openapi_examples


def event_name_pattern() -> str:
    """The names `is_valid_event_name` accepts, as one regular expression for the schema."""
    import re

    exact = [re.escape(event.name) for event in events.CATALOG if "<" not in event.name]
    suffix = events._SUFFIX.pattern.removeprefix("^").removesuffix("$")
    families = [re.escape(prefix) + suffix for prefix in events.FAMILIES]
    return "^(" + "|".join(exact + families) + ")$"


def document_subscription_fields(result, generator, request, public):
    """`event` is a catalog name (or one of its two open families) and `target` an absolute URL:
    say so in the schema, so that clients and the fuzzer send what the API accepts."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("SubscriptionRequest"):
            properties = component.get("properties", {})
            if "event" in properties:
                properties["event"]["pattern"] = event_name_pattern()
                properties["event"]["description"] = "A name from GET /api/events/ (or its channel/emit families)."
            if "target" in properties:
                properties["target"]["format"] = "uri"
    return result


def tag_by_resource(result, generator, request, public):
    """Group operations by resource (subscriptions, deliveries, requests...) rather than under one
    "projects" tag, so the docs read like the contract's tables."""
    for path, operations in result.get("paths", {}).items():
        parts = [part for part in path.split("/") if part]
        resource = parts[3] if len(parts) > 3 and parts[2] == "{project_id}" else parts[1]
        if path == "/api/events/":
            resource = "event catalog"
        if path == "/auth/signin":
            resource = "sign-in"
        if resource == "requests" and "messages" in parts:
            resource = "messages"
        for operation in operations.values():
            operation["tags"] = [resource]
    return result


def only_api_paths(endpoints, **kwargs):
    """Document /api/ and the sign-in: Tiledesk's own paths (/{project_id}/subscriptions, /v3/...) run
    the very same views, and documenting them again would only duplicate every operation."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/") or endpoint[0] == "/auth/signin"]


def _fit(example: object, component: dict, components: dict) -> object:
    """Keep only the properties a (request) component declares."""
    if not isinstance(example, dict) or "properties" not in component:
        return example
    return {key: value for key, value in example.items() if key in component["properties"]}


def add_examples(result, generator, request, public):
    """Put an `example` on every component: resources from the table above, request bodies
    (`...Request`, `Patched...Request`) trimmed to their writable fields, paginated lists wrapping
    one item."""
    components = result.get("components", {}).get("schemas", {})
    examples = openapi_examples.examples()
    for name, component in components.items():
        if "example" in component:
            continue
        base = name.removeprefix("Patched")
        if base in examples:
            component["example"] = examples[base]
        elif base.endswith("Request") and base[: -len("Request")] in examples:
            component["example"] = _fit(examples[base[: -len("Request")]], component, components)
        elif name.startswith("Paginated") and name.endswith("List") and name[9:-4] in examples:
            component["example"] = {
                "count": 1,
                "next": None,
                "previous": None,
                "results": [examples[name[9:-4]]],
            }
    catalog = result.get("paths", {}).get("/api/events/", {}).get("get")
    if catalog:
        from subscriptions.schema import catalog_rows

        catalog["responses"]["200"]["content"]["application/json"]["example"] = catalog_rows(with_schemas=False)
    return result


# --- security schemes of accounts/ -----------------------------------------------------------------


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`JWT <jwt>`: the `token` that `POST /auth/signin` answers, sent as it is "
            "(valid for `JWT_LIFETIME_S`, 24 h by default).",
        }


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "The username or the e-mail address (any case) and the password. Failed "
            "sign-ins are limited per address and per account (429 with `Retry-After`).",
        }


# --- schema extensions for the support app's custom fields and views ------------------------------
# They live here, beside the hooks, so the support app carries no documentation-only code; importing
# this module (done by tiledesk_hooks.urls) registers them.


class ChannelFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "support.conversation_serializers.ChannelField"

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 60, "example": "chat21"}},
            "required": ["name"],
        }


class LeadReferenceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "support.conversation_serializers.LeadReferenceField"

    def map_serializer_field(self, auto_schema, direction):
        from support.serializers import LeadSerializer

        lead = auto_schema.resolve_serializer(LeadSerializer, direction).ref
        if direction == "response":
            return lead
        return {"oneOf": [{"type": "string", "description": "An existing lead's id."}, lead]}


class DepartmentReferenceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "support.conversation_serializers.DepartmentReferenceField"

    def map_serializer_field(self, auto_schema, direction):
        from support.serializers import DepartmentSerializer

        department = auto_schema.resolve_serializer(DepartmentSerializer, "response").ref
        if direction == "response":
            return {"allOf": [department], "nullable": True}
        return {
            "oneOf": [
                {"type": "string", "description": "A department id of this project."},
                {
                    "type": "object",
                    "description": "The department object as the API gave it (its `_id` or `id` is read).",
                    "properties": {"_id": {"type": "string"}, "id": {"type": "string"}},
                },
            ],
            "nullable": True,
        }


class ParticipatingFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "support.conversation_serializers.ParticipatingField"

    def map_serializer_field(self, auto_schema, direction):
        from support.conversation_serializers import ParticipatingAgentSerializer
        from support.serializers import FaqKbSerializer

        serializer = ParticipatingAgentSerializer if self.target.kind == "agents" else FaqKbSerializer
        return {"type": "array", "items": auto_schema.resolve_serializer(serializer, "response").ref, "readOnly": True}


class UserIdFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "support.serializers.UserIdField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "nullable": True, "description": "A user id, as a string."}


class _WithQueryset(OpenApiViewExtension):
    """Views whose get_queryset needs a real request: give the generator the model directly."""

    model_path = ""

    def view_replacement(self):
        from django.apps import apps

        model = apps.get_model(self.model_path)

        class Documented(self.target_class):
            queryset = model.objects.none()

        return Documented


class ProjectViewSetExtension(_WithQueryset):
    target_class = "support.views.ProjectViewSet"
    model_path = "support.Project"


class MessageViewSetExtension(_WithQueryset):
    target_class = "support.views.MessageViewSet"
    model_path = "support.Message"


class RequestViewSetExtension(OpenApiViewExtension):
    """`close` takes no body; `?status=` is text (numbers, a comma-separated list, a name or `all`),
    not the model's integer."""

    target_class = "support.views.RequestViewSet"

    def view_replacement(self):
        from drf_spectacular.utils import OpenApiParameter

        from support.filters import RequestFilter

        status = OpenApiParameter(
            "status",
            str,
            description=RequestFilter.base_filters["status"].extra["help_text"],
            pattern=r"^(all|[a-z0-9]+(,[a-z0-9]+)*)$",
        )

        @extend_schema_view(close=extend_schema(request=None), list=extend_schema(parameters=[status]))
        class Documented(self.target_class):
            pass

        return Documented


_VALIDATION_ERROR = {
    "description": "Invalid input: field errors.",
    "content": {
        "application/json": {
            "schema": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "example": {"target": ["Enter a valid URL."]},
        }
    },
}


def _detail(description: str, message: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": message}}
        },
    }


def add_error_responses(result, generator, request, public):
    """The contract's errors on every operation they can happen on: 400 with field errors for
    bodies, 401 without credentials, 403 for a role that may not, 404 outside one's projects."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "Error",
        {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
            "example": {"detail": "Not found."},
        },
    )
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("requestBody") or "recover" in path:
                responses.setdefault("400", _VALIDATION_ERROR)
            security = operation.get("security") or []
            if security and {} not in security:
                responses.setdefault(
                    "401", _detail("No or invalid credentials.", "Authentication credentials were not provided.")
                )
            if "{project_id}" in path or "{id}" in path:
                responses.setdefault(
                    "403",
                    _detail(
                        "Your role in this project may not do this.",
                        "You do not have permission to perform this action.",
                    ),
                )
                responses.setdefault(
                    "404", _detail("Not found, or in a project you are not a member of.", "No such project.")
                )
    return result


class AutomationViewSetExtension(OpenApiViewExtension):
    """The automations app's actions: `regenerate` takes no body, `runs` answers a page of runs
    filtered by `mode` and `status`."""

    target_class = "automations.views.AutomationViewSet"

    def view_replacement(self):
        from drf_spectacular.utils import OpenApiParameter
        from rest_framework import serializers

        from automations.serializers import RunSerializer

        class PaginatedRunList(serializers.Serializer):
            count = serializers.IntegerField()
            next = serializers.URLField(allow_null=True)
            previous = serializers.URLField(allow_null=True)
            results = RunSerializer(many=True)

        @extend_schema_view(
            regenerate=extend_schema(request=None),
            runs=extend_schema(
                responses=PaginatedRunList,
                parameters=[
                    OpenApiParameter("mode", enum=["production", "development"]),
                    OpenApiParameter("status", str),
                    OpenApiParameter("page", int),
                    OpenApiParameter("page_size", int),
                ],
            ),
        )
        class Documented(self.target_class):
            pass

        return Documented
