"""Inputs of the routing actions on a request: `reroute`, `assign` and `participants`."""

from rest_framework import serializers

from . import routing
from .conversation_serializers import DepartmentReferenceField
from .models import Department, Request


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


class ParticipantsSerializer(serializers.Serializer):
    """`{"participants": [...]}`: who takes part from now on, each an eligible teammate of the
    request's department (user id) or one of the project's bots (`bot_<id>`); an empty list leaves
    the request unassigned."""

    participants = serializers.ListField(child=serializers.CharField(max_length=40), allow_empty=True)

    def validate_participants(self, value: list[str]) -> list[str]:
        conversation: Request = self.context["conversation"]
        chosen = list(dict.fromkeys(value))
        eligible = routing.eligible_participants(conversation.project_id, conversation.department)
        strangers = [participant for participant in chosen if participant not in eligible]
        if strangers:
            raise serializers.ValidationError(
                "Neither teammates eligible in this request's department nor bots (bot_<id>) of this project: "
                f"{', '.join(strangers)}."
            )
        return chosen
