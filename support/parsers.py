"""The API's JSON parser: DRF's, with what a body may contain bounded before any view sees it.

Without it, a body nested 5,000 deep raised RecursionError inside the JSON decoder (a 500), and a
`\\u0000` or a lone surrogate (`\\ud800`) in any string reached the database, which refused it at
INSERT time (PostgreSQL: NUL in text or jsonb; either backend: a string that is not UTF-8), again
a 500. Now the first answers 400 `{"detail": ...}`, the others 400 naming the field, the same on
SQLite and PostgreSQL."""

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from core.nesting import depth
from core.text import unstorable_at


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_JSON_DEPTH
        too_deep = ParseError(f"JSON parse error - the body is nested deeper than {limit} levels.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if depth(data) > limit:
            raise too_deep
        if (found := unstorable_at(data)) is not None:
            path, problem = found
            field = path.split(".")[0].split("[")[0] if isinstance(data, dict) and path else "non_field_errors"
            raise ValidationError({field: [f"{problem[0].upper()}{problem[1:]} (at {path or 'the body'})."]})
        return data
