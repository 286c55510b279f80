"""API error handling: clients get a JSON 4xx they can act on, never a 500 with a traceback."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

logger = logging.getLogger(__name__)


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, DjangoValidationError | IntegrityError):
        set_rollback()  # the request's transaction must not commit half of what failed
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        logger.info("integrity error turned into 400: %s", exc)
        return Response(
            {"non_field_errors": ["This conflicts with an existing object."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return None
