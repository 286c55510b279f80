"""Tiledesk's own paths, for clients written for Tiledesk (`@tiledesk/tiledesk-client`, its Zapier and
Make apps, scripts following its docs, receivers calling back with their envelope's token).

They run the views of /api/ (same permissions, serializers, domain operations, objects and events)
and answer as Tiledesk's server does (routes/auth.js, routes/subscription.js, routes/request.js,
routes/message.js, routes/lead.js, routes/faq_kb.js, pubmodules/events/eventRoute.js): 200 for a
create (its client takes nothing else for a success), `DELETE` with the deleted object, `PUT` as a
partial update, lists as plain arrays (requests as `{perPage, count, requests}`), a conversation
named by its `request_id`, errors `{"success": false, "msg"}`. What Tiledesk gets wrong is not
copied (see the README, "Coming from Tiledesk")."""

from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import throttling, tokens
from accounts.authentication import BasicAuthentication, JWTAuthentication, SigninThrottled
from accounts.serializers import SigninAnswerSerializer, SigninSerializer, UserSerializer
from subscriptions import views as subscriptions
from support import views as support
from support.conversation_serializers import MessageRowSerializer
from support.models import Project

from .answers import TiledeskAnswers, TiledeskErrorSerializer
from .lists import RequestsPage, TiledeskRequestFilter

# Scripts and integrations authenticate per call; no session (and so no CSRF) on these paths.
CLIENT_AUTHENTICATION = [BasicAuthentication, JWTAuthentication, TokenAuthentication]


class SigninView(TiledeskAnswers, APIView):
    """`POST /auth/signin` `{"email", "password"}` (routes/auth.js): a JWT for
    `Authorization: JWT <jwt>`. A username works in `email` too."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request) -> str:
        return 'JWT realm="api"'

    @extend_schema(
        auth=[],
        request=SigninSerializer,
        responses={
            200: SigninAnswerSerializer,
            400: OpenApiResponse(TiledeskErrorSerializer, description="`email` or `password` missing."),
            401: OpenApiResponse(TiledeskErrorSerializer, description="Wrong e-mail (or username) or password."),
            429: OpenApiResponse(
                TiledeskErrorSerializer, description="Too many failed sign-ins; `Retry-After` says when to try again."
            ),
        },
        description="Sign in with an e-mail (or username) and a password, as Tiledesk's clients do; the "
        "answer's `token` goes in `Authorization` as it is (`JWT <jwt>`) and lasts `JWT_LIFETIME_S`.",
    )
    def post(self, request):
        form = SigninSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        name, password = form.validated_data["email"], form.validated_data["password"]
        if wait := throttling.retry_after(request, name):
            raise SigninThrottled(wait)
        user = authenticate(request, username=name, password=password)
        if user is None:
            raise AuthenticationFailed("Authentication failed: wrong e-mail or password.")
        update_last_login(None, user)
        return Response(
            {"success": True, "token": f"JWT {tokens.issue_user_token(user)}", "user": UserSerializer(user).data}
        )


class SubscriptionViewSet(TiledeskAnswers, subscriptions.SubscriptionViewSet):
    """`/{project_id}/subscriptions[/{id}]`."""

    authentication_classes = CLIENT_AUTHENTICATION
    pagination_class = None

    def create(self, request, *args, **kwargs):
        """200 with the secret (body and `x-hook-secret`); the same event and target again answer
        the subscription that exists (its secret masked, no header), not a twin (Tiledesk's unique
        index on project, event and target)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # One create at a time per project, so that a client's retry finds the first one.
        Project.objects.select_for_update(no_key=True).filter(pk=self.project.pk).exists()
        wanted = serializer.validated_data
        existing = next(
            (
                subscription
                for subscription in self.get_queryset()
                .filter(event=wanted.get("event"), target=wanted.get("target"))
                .order_by("created_at")
                if subscription.events == wanted.get("events")
            ),
            None,
        )
        if existing is not None:
            return Response(self.get_serializer(existing).data)
        self.perform_create(serializer)
        return self.created_response(serializer.instance, status.HTTP_200_OK)

    def update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        subscription = self.get_object()
        data = self.get_serializer(subscription).data
        self.perform_destroy(subscription)
        return Response(data)


class HistoryPagination(BasePagination):
    """Tiledesk's subscription history paging: `?page=N` counted from 0, 40 rows, a plain array."""

    page_size = 40
    last_page = 10**7  # beyond any log; keeps the OFFSET inside a database integer

    def paginate_queryset(self, queryset, request, view=None):
        try:
            page = min(max(int(request.query_params.get("page", 0)), 0), self.last_page)
        except ValueError:
            page = 0
        return list(queryset[page * self.page_size : (page + 1) * self.page_size])

    def get_paginated_response(self, data):
        return Response(data)


class SubscriptionHistoryView(TiledeskAnswers, subscriptions.AttemptLogView):
    """`/{project_id}/subscriptions/history`: every attempt, newest first."""

    authentication_classes = CLIENT_AUTHENTICATION
    pagination_class = HistoryPagination


class CreatedAs200:
    """Tiledesk answers a create with 200 (`res.json(...)`), and its client takes only a 200 with a
    body for a success."""

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        response.status_code = status.HTTP_200_OK
        return response


class RequestViewSet(TiledeskAnswers, support.RequestViewSet):
    """`/{project_id}/requests[/{request_id}[/close|/participants]]`: a conversation is named by its
    `request_id` (`support-group-...`), as Tiledesk's routes and client name it."""

    authentication_classes = CLIENT_AUTHENTICATION
    lookup_field = "request_id"
    pagination_class = RequestsPage
    filterset_class = TiledeskRequestFilter

    def filter_queryset(self, queryset):
        """The list's query only: a conversation asked for by its `request_id` is found whatever
        its status (Tiledesk's `GET /:requestid`, routes/request.js:2438-2467)."""
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def participants_body(self, request):
        """Tiledesk's body is the array itself (routes/request.js:434-441)."""
        return {"participants": request.data} if isinstance(request.data, list) else request.data


class MessageViewSet(TiledeskAnswers, CreatedAs200, support.MessageViewSet):
    """`/{project_id}/requests/{request_id}/messages`: `POST` answers the message with its
    `request`, `GET` every message of the conversation, oldest first, as plain rows
    (routes/message.js:31-300, 532-537)."""

    authentication_classes = CLIENT_AUTHENTICATION
    conversation_lookup = "request_id"
    pagination_class = None

    def get_serializer_class(self):
        return MessageRowSerializer if self.action == "list" else super().get_serializer_class()


class EventViewSet(TiledeskAnswers, CreatedAs200, support.EventViewSet):
    """`POST /{project_id}/events` `{"name", "attributes"?}` (pubmodules/events/eventRoute.js:15-50)."""

    authentication_classes = CLIENT_AUTHENTICATION


class LeadViewSet(TiledeskAnswers, support.LeadViewSet):
    """`/{project_id}/leads/{id}`: `GET`, and `PUT` changing what the body names (routes/lead.js:25-101,
    449-460)."""

    authentication_classes = CLIENT_AUTHENTICATION

    def update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)


class BotViewSet(TiledeskAnswers, support.FaqKbViewSet):
    """`/{project_id}/faq_kb[/{id}]` and `/{project_id}/bots[/{id}]`: the project's bots, as a plain
    array (routes/faq_kb.js:485-531, 595-656; app.js:598-599)."""

    authentication_classes = CLIENT_AUTHENTICATION
    pagination_class = None
