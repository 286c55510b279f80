"""Serializers that only describe bodies in the OpenAPI schema (and validate the small action
bodies), so that every endpoint documents what it takes and answers."""

from rest_framework import serializers

from . import events, payload_schemas


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The name a subscription uses; `<channel>`/`<name>` are placeholders.")
    description = serializers.CharField()
    payload = serializers.CharField(help_text="The API resource the payload is, exactly as its API serializes it.")
    example = serializers.JSONField(help_text="An example payload (what `payload` of the envelope looks like).")
    schema = serializers.JSONField(
        required=False,
        help_text="The payload's JSON Schema (draft 2020-12, standalone), generated from the serializers.",
    )


def catalog_rows(with_schemas: bool = True) -> list[dict]:
    """The catalog as `GET /api/events/` answers it; placeholders get an example value. The OpenAPI
    document's example of it leaves the schemas out: they are generated from that document."""
    schemas = payload_schemas.payload_schemas() if with_schemas else {}
    return [
        {
            "name": event.name,
            "description": event.description,
            "payload": event.payload,
            "example": events.example_payload(
                event.name.replace("<channel>", "chat21").replace("<name>", "typing.start")
            ),
            **({"schema": schemas[event.name]} if with_schemas else {}),
        }
        for event in events.CATALOG
    ]


class SubscriptionSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new full secret (`whsec_` + base64). Shown only here.")


class AcceptedDeliverySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The delivery id (also the `x-hook-id` and `webhook-id` the target gets).")
    status = serializers.ChoiceField(choices=["pending"])
    event = serializers.CharField(required=False)
    filter_matches = serializers.BooleanField(
        required=False, help_text="A test event: whether the example meets the subscription's filter (sent either way)."
    )


class RecoverSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Redeliver the failed deliveries created at or after this moment.")


class RecoverResultSerializer(serializers.Serializer):
    subscription = serializers.CharField()
    since = serializers.DateTimeField()
    count = serializers.IntegerField(help_text="How many failed deliveries were started again.")
    deliveries = serializers.ListField(child=serializers.CharField())


class ReplayMissingSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Queue the skipped deliveries created at or after this moment.")
    until = serializers.DateTimeField(required=False, help_text="... and at or before this one (default: now).")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("until") and attrs["until"] < attrs["since"]:
            raise serializers.ValidationError({"until": ["Must not be before `since`."]})
        return attrs


class ReplayMissingResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many skipped deliveries were queued.")
    deliveries = serializers.ListField(child=serializers.CharField())


class DeliveriesByStatusSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    success = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()


class AttemptsByOutcomeSerializer(serializers.Serializer):
    success = serializers.IntegerField()
    failed = serializers.IntegerField()


class LatencySerializer(serializers.Serializer):
    p50 = serializers.IntegerField(allow_null=True, help_text="Attempt duration (one HTTP exchange), ms.")
    p95 = serializers.IntegerField(allow_null=True)


class WindowStatsSerializer(serializers.Serializer):
    deliveries = DeliveriesByStatusSerializer(help_text="Deliveries made in the window, by status.")
    attempts = AttemptsByOutcomeSerializer(help_text="Attempts made in the window, by outcome.")
    latency_ms = LatencySerializer()


class WindowsSerializer(serializers.Serializer):
    hour = WindowStatsSerializer()
    day = WindowStatsSerializer()
    week = WindowStatsSerializer()


class LastAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()
    delivery = serializers.CharField()


class SubscriptionStatsSerializer(serializers.Serializer):
    subscription = serializers.CharField()
    enabled = serializers.BooleanField()
    at = serializers.DateTimeField(help_text="When the figures were computed.")
    windows = WindowsSerializer(help_text="The last hour, day and week.")
    last_success = LastAttemptSerializer(allow_null=True)
    last_failure = LastAttemptSerializer(allow_null=True)
