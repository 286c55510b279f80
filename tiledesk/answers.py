"""Errors as Tiledesk's server answers them: `{"success": false, "msg": "..."}`, with the same status
codes as the API. Field errors are kept beside the message (`errors`), as /api/ gives them."""

from rest_framework import serializers

from support.exceptions import api_exception_handler


def _texts(errors) -> list[str]:
    if isinstance(errors, dict):
        return [f"{key}: {' '.join(_texts(value))}" for key, value in errors.items()]
    if isinstance(errors, list):
        return [text for item in errors for text in _texts(item)]
    return [str(errors)]


def tiledesk_error(data) -> dict:
    if isinstance(data, dict) and set(data) == {"detail"}:
        return {"success": False, "msg": str(data["detail"])}
    if isinstance(data, dict):
        parts = []
        for key, errors in data.items():
            text = " ".join(_texts(errors))
            parts.append(text if key == "non_field_errors" else f"{key}: {text}")
        return {"success": False, "msg": "; ".join(parts), "errors": data}
    return {"success": False, "msg": " ".join(_texts(data))}


def tiledesk_exception_handler(exc, context):
    response = api_exception_handler(exc, context)
    if response is not None:
        response.data = tiledesk_error(response.data)
    return response


class TiledeskAnswers:
    """Mixed into a DRF view (before its base), makes its errors Tiledesk-shaped."""

    def get_exception_handler(self):
        return tiledesk_exception_handler


class TiledeskErrorSerializer(serializers.Serializer):
    """An error on Tiledesk's paths (documentation only)."""

    success = serializers.BooleanField(default=False)
    msg = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field errors, when the input was invalid.",
    )
