from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from support.models import MANAGER_ROLES
from support.permissions import ProjectScopedMixin
from support.views import PROJECT_PERMISSIONS

from . import publishing, replay, schema, stats, tasks
from .filters import AttemptFilter, DeliveryFilter
from .models import Attempt, Delivery, Subscription
from .serializers import AttemptSerializer, DeliverySerializer, SubscriptionSerializer


class ManagersOnly(ProjectScopedMixin):
    """Only owners and admins manage subscriptions and read what was sent."""

    permission_classes = PROJECT_PERMISSIONS
    read_roles = MANAGER_ROLES
    write_roles = MANAGER_ROLES


class SubscriptionViewSet(ManagersOnly, viewsets.ModelViewSet):
    queryset = Subscription.objects.order_by("-created_at")
    serializer_class = SubscriptionSerializer
    filterset_fields = ("event", "enabled")

    def perform_create(self, serializer) -> None:
        serializer.save(project=self.project, created_by=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return self.created_response(serializer.instance, status.HTTP_201_CREATED)

    def created_response(self, subscription: Subscription, status_code: int) -> Response:
        """The answer to a create: the one place besides a rotation that shows the full secret, in
        the body and, as Tiledesk hands it over, in the `x-hook-secret` header."""
        data = self.get_serializer(subscription, context={**self.get_serializer_context(), "reveal_secret": True}).data
        return Response(data, status=status_code, headers={"x-hook-secret": subscription.secret})

    @extend_schema(request=None, responses={200: schema.SubscriptionSecretSerializer})
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request, project_id=None, pk=None):
        return Response({"secret": self.get_object().rotate_secret()})

    @extend_schema(
        request=None,
        responses={202: schema.AcceptedDeliverySerializer},
        description="Deliver an example of the subscription's event (see `GET /api/events/`) through the real "
        "pipeline: a delivery is created, sent by a worker, retried and logged like any other.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, project_id=None, pk=None):
        subscription = self.get_object()
        sent = publishing.publish_test_event(subscription)
        return Response(
            {
                "id": sent.delivery_id,
                "status": Delivery.Status.PENDING,
                "event": sent.event,
                "filter_matches": sent.filter_matches,
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        request=schema.RecoverSerializer,
        responses={202: schema.RecoverResultSerializer},
        description="Start a new round of attempts on every failed delivery of this subscription created since "
        "`since` (same delivery ids, attempt numbers continue).",
    )
    @action(detail=True, methods=["post"])
    def recover(self, request, project_id=None, pk=None):
        subscription = self.get_object()
        body = schema.RecoverSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        since = body.validated_data["since"]
        replayed = replay.replay(replay.failed_since(since, subscription=subscription))
        return Response(
            {
                "subscription": subscription.pk,
                "since": body.data["since"],
                "count": len(replayed),
                "deliveries": replayed,
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        request=schema.ReplayMissingSerializer,
        responses={202: schema.ReplayMissingResultSerializer},
        description="Queue the deliveries made while this subscription was disabled (`skipped`) in the window, "
        "oldest first, with their delivery ids and sequence numbers. The subscription must be enabled.",
    )
    @action(detail=True, methods=["post"])
    def replay_missing(self, request, project_id=None, pk=None):
        subscription = self.get_object()
        body = schema.ReplayMissingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not subscription.enabled:
            raise ValidationError({"enabled": ["Enable the subscription first: a disabled one is sent nothing."]})
        queued = replay.replay_missing(subscription, body.validated_data["since"], body.validated_data.get("until"))
        return Response({"count": len(queued), "deliveries": queued}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={200: schema.SubscriptionStatsSerializer},
        description="The subscription's deliveries by status and attempts by outcome over the last hour, day and "
        "week, the p50/p95 duration of its attempts, and its last success and last failure.",
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, project_id=None, pk=None):
        return Response(schema.SubscriptionStatsSerializer(stats.subscription_stats(self.get_object())).data)


class AttemptLogView(ManagersOnly, generics.ListAPIView):
    """Every delivery attempt of the project, newest first (Tiledesk's "subscriptions history")."""

    queryset = Attempt.objects.order_by("-created_at", "-id")
    serializer_class = AttemptSerializer
    filterset_class = AttemptFilter


class DeliveryViewSet(ManagersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = (
        Delivery.objects.select_related("event_payload")
        .prefetch_related(Prefetch("attempts", queryset=Attempt.objects.order_by("attempt")))
        .order_by("-created_at", "-id")
    )
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    @extend_schema(request=None, responses={202: schema.AcceptedDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, project_id=None, pk=None):
        delivery = self.get_object()
        if not delivery.redeliverable:
            # Its answer only mattered at the moment the conversation was routed.
            raise ValidationError({"event": ["operator.select calls are synchronous and cannot be redelivered."]})
        tasks.redeliver(delivery)
        return Response({"id": delivery.pk, "status": Delivery.Status.PENDING}, status=status.HTTP_202_ACCEPTED)


class EventCatalogView(APIView):
    """The event catalog: every name a subscription may use, with the payload it carries."""

    permission_classes = [AllowAny]
    pagination_class = None

    @extend_schema(
        auth=[],
        responses={200: OpenApiResponse(schema.EventTypeSerializer(many=True), description="The whole catalog.")},
    )
    def get(self, request):
        return Response(schema.catalog_rows())
