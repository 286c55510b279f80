"""Serializers that only describe bodies in the OpenAPI schema (and validate the small action
bodies), so that every endpoint documents what it takes and answers."""

from rest_framework import serializers

from . import events


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The name a subscription uses; `<channel>`/`<name>` are placeholders.")
    description = serializers.CharField()
    payload = serializers.CharField(help_text="The API resource the payload is, exactly as its API serializes it.")
    example = serializers.JSONField(help_text="An example payload (what `payload` of the envelope looks like).")


def catalog_rows() -> list[dict]:
    """The catalog as `GET /api/events/` answers it; placeholders get an example value."""
    return [
        {
            "name": event.name,
            "description": event.description,
            "payload": event.payload,
            "example": events.example_payload(
                event.name.replace("<channel>", "chat21").replace("<name>", "typing.start")
            ),
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
