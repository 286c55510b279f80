import django_filters

from support.filters import MomentFilter

from .models import Run


class RunFilter(django_filters.FilterSet):
    mode = django_filters.ChoiceFilter(choices=Run.Mode.choices)
    status = django_filters.ChoiceFilter(choices=Run.Status.choices)
    since = MomentFilter(field_name="created_at", lookup_expr="gte")
    until = MomentFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = Run
        fields = ("mode", "status", "since", "until")
