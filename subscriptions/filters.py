import django_filters

from support.filters import MomentFilter

from .models import Attempt, Delivery


class AttemptFilter(django_filters.FilterSet):
    since = MomentFilter(field_name="created_at", lookup_expr="gte")
    until = MomentFilter(field_name="created_at", lookup_expr="lte")
    outcome = django_filters.ChoiceFilter(choices=Attempt.Outcome.choices)
    subscription = django_filters.CharFilter(field_name="subscription_id")
    delivery = django_filters.CharFilter(field_name="delivery_id")

    class Meta:
        model = Attempt
        fields = ("subscription", "delivery", "event", "outcome", "status_code", "since", "until")


class DeliveryFilter(django_filters.FilterSet):
    since = MomentFilter(field_name="created_at", lookup_expr="gte")
    until = MomentFilter(field_name="created_at", lookup_expr="lte")
    status = django_filters.ChoiceFilter(choices=Delivery.Status.choices)
    subscription = django_filters.CharFilter(field_name="subscription_id")

    class Meta:
        model = Delivery
        fields = ("subscription", "event", "status", "since", "until")
