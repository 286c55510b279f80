"""Query filters of the API's lists: moments both databases can compare with, and a request's
status by Tiledesk's numbers."""

from datetime import UTC, datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from .models import Request


class MomentField(IsoDateTimeField):
    """An ISO 8601 moment both databases can compare with. Dates that do not exist (February 30)
    are invalid as usual; so are moments that exist only in their own time zone (year 1 at
    +05:00, year 9999 at -05:00): turned into UTC they leave the years 1-9999, and the query would
    fail with OverflowError instead of answering."""

    default_error_messages = {"out_of_range": "Enter a date/time between the years 1 and 9999 in UTC."}

    def to_python(self, value) -> datetime | None:
        moment = super().to_python(value)
        if moment is not None:
            try:
                moment.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None
        return moment


class MomentFilter(django_filters.IsoDateTimeFilter):
    """`?since=` / `?until=`: a MomentField."""

    field_class = MomentField


# The names `status` had before it took Tiledesk's numbers, still accepted in filters.
STATUS_ALIASES = {
    "open": Request.Status.TEMP,
    "temp": Request.Status.TEMP,
    "pooled": Request.Status.POOLED,
    "unassigned": Request.Status.POOLED,
    "assigned": Request.Status.ASSIGNED,
    "closed": Request.Status.CLOSED,
}


class StatusListField(forms.CharField):
    """`100`, `100,200` (Tiledesk's form), a name such as `pooled`, or `all`: a list of statuses,
    or None for every status."""

    def clean(self, value):
        value = super().clean(value)
        if not value or value.strip() == "all":
            return None
        statuses = []
        for token in (part.strip() for part in value.split(",")):
            if token.isdigit() and int(token) in Request.Status.values:
                statuses.append(int(token))
            elif token in STATUS_ALIASES:
                statuses.append(STATUS_ALIASES[token])
            else:
                known = ", ".join(map(str, Request.Status.values))
                # The token goes in as a parameter: django-filter %-formats every message, so a
                # `%` the client sent must not be part of the format string.
                raise forms.ValidationError(
                    "Unknown status %(token)s: give %(known)s (comma-separated for several), a name "
                    "(%(names)s) or all.",
                    code="invalid_choice",
                    params={"token": repr(token), "known": known, "names": ", ".join(STATUS_ALIASES)},
                )
        return statuses


class StatusFilter(django_filters.Filter):
    field_class = StatusListField

    def filter(self, qs, value):
        return qs if value is None else qs.filter(status__in=value)


class RequestFilter(django_filters.FilterSet):
    status = StatusFilter(
        help_text="Tiledesk's numbers: 50 temp (not routed yet), 100 unassigned (pooled), 200 assigned, "
        "1000 closed; several comma-separated (100,200); the names open/pooled/assigned/closed are "
        "accepted too; all (or none) for every status."
    )

    class Meta:
        model = Request
        fields = ("status", "department", "channel_name")
