"""Query filters of the support domain's lists."""

import django_filters
from django import forms

from .models import Request

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
                raise forms.ValidationError(
                    f"Unknown status {token!r}: give {known} (comma-separated for several), a name "
                    f"({', '.join(STATUS_ALIASES)}) or all."
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
