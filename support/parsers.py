"""Request body parsing shared by the whole API."""

from rest_framework import parsers


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
