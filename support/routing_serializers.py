"""Inputs of the routing actions on a request: `reroute` and `assign`."""

from rest_framework import serializers

from . import routing
from .models import Department, Request
from .serializers import DepartmentReferenceField


class RerouteSerializer(serializers.Serializer):
    """`{"department"?}`: route again, in another department if one is given."""

    department = DepartmentReferenceField(queryset=Department.objects.all(), required=False, allow_null=True)


class AssignSerializer(serializers.Serializer):
    """`{"id_user"}`: who serves the request from now on; an eligible teammate of its department."""

    id_user = serializers.CharField(max_length=40)

    def validate_id_user(self, value: str) -> str:
        conversation: Request = self.context["conversation"]
        if not routing.is_eligible(conversation, value):
            raise serializers.ValidationError(
                f"User {value!r} is not an active teammate eligible in this request's department."
            )
        return value
