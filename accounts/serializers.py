from django.contrib.auth import get_user_model
from rest_framework import serializers


class UserSerializer(serializers.ModelSerializer):
    """A user as Tiledesk's sign-in answers it (`_id`, `email`, `firstname`, `lastname`), with `id`
    as every resource here carries, and nothing secret."""

    _id = serializers.CharField(source="pk", read_only=True)
    id = serializers.CharField(source="pk", read_only=True)
    firstname = serializers.CharField(source="first_name", read_only=True)
    lastname = serializers.CharField(source="last_name", read_only=True)

    class Meta:
        model = get_user_model()
        fields = ("_id", "id", "email", "firstname", "lastname")
        read_only_fields = fields


class SigninSerializer(serializers.Serializer):
    """Tiledesk's `{"email", "password"}`; a username works in `email` too."""

    email = serializers.CharField(max_length=254, trim_whitespace=True)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class SigninAnswerSerializer(serializers.Serializer):
    """What `POST /auth/signin` answers (documentation only)."""

    success = serializers.BooleanField(default=True)
    token = serializers.CharField(help_text="`JWT <jwt>`: send it as it is in `Authorization`.")
    user = UserSerializer()
