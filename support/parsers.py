"""Request body parsing shared by the whole API.

JSON is DRF's parser with what a body may contain bounded before any view sees it. Without it, a
body nested 5,000 deep raised RecursionError inside the JSON decoder (a 500), and a `\\u0000` or a
lone surrogate (`\\ud800`) in any string reached the database, which refused it at INSERT time
(PostgreSQL: NUL in text or jsonb; either backend: a string that is not UTF-8), again a 500. Now
the first answers 400 `{"detail": ...}`, the others 400 naming the field, the same on SQLite and
PostgreSQL."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from core.nesting import depth
from core.text import unstorable_at


class BoundedJSONParser(parsers.JSONParser):
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


class FormParser(parsers.FormParser):
    """`application/x-www-form-urlencoded` bodies (`curl -d`, scripts, Tiledesk's Express server
    reads them too) parsed into the same plain object a JSON body gives: a field left out is left
    out. DRF's own parser hands serializers a QueryDict, which they read as an HTML form, where a
    missing checkbox means `false`: a form-encoded subscription without `enabled` was created
    disabled. A repeated key, or one written `key[]`, gives a list.

    The browsable API's forms post multipart bodies, which keep HTML form semantics (an unticked
    box there does mean `false`)."""

    def parse(self, stream, media_type=None, parser_context=None) -> dict:
        form = super().parse(stream, media_type, parser_context)
        lists: dict[str, list[str]] = {}
        always_lists: set[str] = set()
        for key, values in form.lists():
            name = key.removesuffix("[]")
            if name != key:
                always_lists.add(name)
            lists.setdefault(name, []).extend(values)
        return {
            name: values if name in always_lists or len(values) > 1 else values[0] for name, values in lists.items()
        }
