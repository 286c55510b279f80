from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from support.serializers import ProjectScopedSerializer, UserIdField

from . import events, matching, payload_filter, signing, target_credentials
from .models import Attempt, Delivery, Subscription
from .targets import credentials_problem, url_problem

OPERATOR_DISABLED = "Disabled by an operator."


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string"}, "example": {"X-Api-Key": "••••••••"}}
)
class MaskedHeadersField(serializers.JSONField):
    """`headers`: written as given, read from the encrypted column with every value masked."""

    def get_attribute(self, instance):
        return instance

    def to_representation(self, instance):
        return target_credentials.masked_headers(target_credentials.unseal(instance.headers_sealed))


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "type": {"enum": ["bearer", "basic"]},
            "token": {"type": "string"},
            "username": {"type": "string"},
            "password": {"type": "string"},
        },
        "required": ["type"],
    }
)
class MaskedAuthField(serializers.JSONField):
    """`auth`: written as given, read from the encrypted column with every value masked."""

    def get_attribute(self, instance):
        return instance

    def to_representation(self, instance):
        return target_credentials.masked_auth(target_credentials.unseal(instance.auth_sealed))


class SubscriptionSerializer(ProjectScopedSerializer):
    """A REST Hook. The full secret is shown once, in the answer to the create (and on rotation)."""

    event = serializers.CharField(max_length=200, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        min_length=1,
        max_length=100,
        help_text="Names, `prefix.*` wildcards (any depth under the prefix) or `*` (all but operator.select).",
    )
    filter = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="Payload conditions: dotted path -> literal (equality) or "
        '{"$in"|"$nin"|"$ne"|"$exists"|"$gt"|"$gte"|"$lt"|"$lte"|"$regex": ...}; all must hold.',
    )
    headers = MaskedHeadersField(
        required=False,
        allow_null=True,
        help_text="Sent with every delivery. Values are write-only: read back masked; a masked value sent back "
        "keeps the stored one. Protocol headers (content-type, host, webhook-*, x-hook-*...) are refused.",
    )
    auth = MaskedAuthField(
        required=False,
        allow_null=True,
        help_text='{"type": "bearer", "token"} or {"type": "basic", "username", "password"}; values masked on read.',
    )
    target = serializers.CharField(max_length=2000)
    secret = serializers.SerializerMethodField()
    createdBy = UserIdField(source="created_by_id", read_only=True)

    class Meta:
        model = Subscription
        fields = ProjectScopedSerializer.common_fields + (
            "event",
            "events",
            "filter",
            "headers",
            "auth",
            "target",
            "enabled",
            "ordering",
            "rate_limit",
            "disabled_reason",
            "secret",
            "createdBy",
        )
        read_only_fields = ("disabled_reason",)
        extra_kwargs = {
            "ordering": {
                "help_text": '"fifo": one delivery in flight at a time, in publish order (a failing one holds '
                'those after it until it succeeds or fails finally); "none" (default): side by side.'
            },
            "rate_limit": {
                "help_text": "Deliveries per second at most (null: no limit); the excess waits, it does not fail."
            },
        }

    def get_fields(self):
        # `__v` (Tiledesk's document version) cannot be a class attribute: Python would mangle it.
        fields = super().get_fields()
        fields["__v"] = serializers.SerializerMethodField(method_name="get_version")
        return fields

    def get_version(self, obj) -> int:
        return 0

    def get_secret(self, obj) -> str:
        return obj.secret if self.context.get("reveal_secret") else signing.mask_secret(obj.secret)

    def validate_event(self, value: str) -> str:
        if not events.is_valid_event_name(value):
            raise serializers.ValidationError(
                f"Unknown event {value!r}: use a name from GET /api/events/, "
                "message.create.request.channel.<channel>, message.create.channel.<channel> or event.emit.<name>."
            )
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        value = list(dict.fromkeys(value))
        problems = [problem for pattern in value if (problem := matching.pattern_problem(pattern))]
        if problems:
            raise serializers.ValidationError(problems)
        if events.OPERATOR_SELECT in value and len(value) > 1:
            raise serializers.ValidationError("operator.select is synchronous: it stays alone in its subscription.")
        return value

    def validate_filter(self, value):
        try:
            return payload_filter.validate(value) or None if value is not None else None
        except payload_filter.FilterProblem as problem:
            raise serializers.ValidationError(str(problem)) from problem

    def validate(self, attrs: dict) -> dict:
        # `events` decides when given; `event` alone stands for `events: [event]`.
        if "events" in attrs:
            attrs["event"] = attrs["events"][0]
        elif "event" in attrs:
            attrs["events"] = [attrs["event"]]
        elif self.instance is None:
            raise serializers.ValidationError({"event": ["This field is required (or give `events`)."]})
        self._seal_credentials(attrs)
        if attrs.get("event") == events.OPERATOR_SELECT:
            others = Subscription.objects.filter(project=self.project, event=events.OPERATOR_SELECT)
            if self.instance is not None:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                raise serializers.ValidationError(
                    {
                        "event": [
                            "This project already has an operator.select subscription (at most one, enabled or not)."
                        ]
                    }
                )
        return attrs

    def validate_target(self, value: str) -> str:
        if problem := url_problem(value.strip()) or credentials_problem(value.strip()):
            raise serializers.ValidationError(problem)
        return value.strip()

    def _seal_credentials(self, attrs: dict) -> None:
        """`headers` and `auth` become their encrypted columns, masked values keeping stored ones."""
        instance = self.instance
        stored_auth = target_credentials.unseal(instance.auth_sealed) if instance else {}
        auth = stored_auth
        try:
            if "auth" in attrs:
                auth = target_credentials.merged_auth(attrs.pop("auth"), stored_auth)
                attrs["auth_sealed"] = target_credentials.seal(auth)
        except target_credentials.CredentialsProblem as problem:
            raise serializers.ValidationError({"auth": [str(problem)]}) from problem
        try:
            if "headers" in attrs:
                stored = target_credentials.unseal(instance.headers_sealed) if instance else {}
                headers = target_credentials.merged_headers(attrs.pop("headers") or {}, stored, bool(auth))
                attrs["headers_sealed"] = target_credentials.seal(headers)
            elif (
                auth
                and instance
                and "authorization" in {name.lower() for name in target_credentials.unseal(instance.headers_sealed)}
            ):
                raise target_credentials.CredentialsProblem(
                    "Authorization comes from `auth` here: give one or the other."
                )
        except target_credentials.CredentialsProblem as problem:
            raise serializers.ValidationError({"headers": [str(problem)]}) from problem

    def update(self, instance, validated_data):
        enabled = validated_data.pop("enabled", instance.enabled)
        instance = super().update(instance, validated_data)
        if enabled and not instance.enabled:  # the lifecycle (and its announcement) does the rest
            instance.enable()
        elif instance.enabled and not enabled:
            instance.disable(OPERATOR_DISABLED)
        return instance


class AttemptSerializer(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Attempt
        fields = (
            "id",
            "delivery",
            "subscription",
            "event",
            "attempt",
            "target",
            "request_headers",
            "request_body",
            "status_code",
            "response_headers",
            "response_body",
            "error",
            "duration_ms",
            "outcome",
            "createdAt",
        )


class DeliverySerializer(ProjectScopedSerializer):
    timestamp = serializers.SerializerMethodField()
    attempts = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = ProjectScopedSerializer.common_fields + (
            "subscription",
            "event",
            "status",
            "sequence",
            "attempt_count",
            "next_attempt_at",
            "last_error",
            "decision",
            "timestamp",
            "attempts",
        )

    def get_timestamp(self, obj) -> int:
        return obj.event_payload.timestamp_ms()

    def get_attempts(self, obj) -> list[dict]:
        rows = sorted(obj.attempts.all(), key=lambda attempt: attempt.attempt)
        return AttemptSerializer(rows, many=True).data
