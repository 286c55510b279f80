"""The lists Tiledesk's client reads, paged and filtered as Tiledesk's server does."""

import django_filters
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from support.filters import RequestFilter
from support.models import Request

# What Tiledesk lists when no `status` is asked for: every open request that is routed
# (routes/request.js:1240, `status < 1000`, not 50 (temp) nor 150 (abandoned)).
OPEN_STATUSES = (Request.Status.POOLED, Request.Status.ASSIGNED)
SORT_FIELDS = {"createdAt": "created_at", "updatedAt": "updated_at"}
# Beyond any list; keeps an OFFSET inside a database integer.
LAST_PAGE = 10**7


def _whole_number(request, name: str, default: int, minimum: int) -> int:
    given = request.query_params.get(name)
    if given in (None, ""):
        return default
    try:
        number = int(given)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ValidationError({name: [f"A whole number from {minimum}."]})
    return number


class RequestsPage(BasePagination):
    """`getAllRequests`' page (routes/request.js:1219-1237, 1815-1822): `?limit` (40 by default;
    more than 100 reads as 40), `?page` counted from 0, answered as `{perPage, count, requests}`."""

    default_limit = 40
    max_limit = 100

    def paginate_queryset(self, queryset, request, view=None):
        self.limit = _whole_number(request, "limit", self.default_limit, minimum=1)
        if self.limit > self.max_limit:
            self.limit = self.default_limit
        page = min(_whole_number(request, "page", 0, minimum=0), LAST_PAGE)
        self.count = queryset.count()
        return list(queryset[page * self.limit : (page + 1) * self.limit])

    def get_paginated_response(self, data):
        return Response({"perPage": self.limit, "count": self.count, "requests": data})


class TiledeskRequestFilter(RequestFilter):
    """`getAllRequests`' query (routes/request.js:1262-1452): `status` (Tiledesk's numbers,
    comma-separated, or `all`; the open ones when not given), `dept_id`, `lead` (a lead's id),
    `channel`, and the order: `sort` (`createdAt`, `updatedAt`) and `direction` (`-1` newest first,
    the default, or `1`)."""

    dept_id = django_filters.CharFilter(field_name="department_id")
    lead = django_filters.CharFilter(field_name="lead_id")
    channel = django_filters.CharFilter(field_name="channel_name")
    sort = django_filters.ChoiceFilter(choices=[(name, name) for name in SORT_FIELDS], method="ordered_later")
    direction = django_filters.ChoiceFilter(
        choices=[("1", "oldest first"), ("-1", "newest first")], method="ordered_later"
    )

    def ordered_later(self, queryset, name, value):
        return queryset  # `filter_queryset` orders by both at once

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.data.get("status"):
            queryset = queryset.filter(status__in=OPEN_STATUSES)
        field = SORT_FIELDS[self.form.cleaned_data.get("sort") or "createdAt"]
        if self.form.cleaned_data.get("direction") == "1":
            return queryset.order_by(field, "id")
        return queryset.order_by(f"-{field}", "-id")
