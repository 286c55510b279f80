"""Filters shared by the API's list views."""

from datetime import UTC, datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


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
