from datetime import timedelta

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from support.models import MANAGER_ROLES
from support.permissions import ProjectScopedMixin
from support.views import PROJECT_PERMISSIONS

from . import events, signing, tasks
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
        serializer.save(project=self.project, created_by=self.request.user, secret=signing.new_secret())

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        data = self.get_serializer(
            serializer.instance, context={**self.get_serializer_context(), "reveal_secret": True}
        ).data
        # Tiledesk also hands the secret over in a response header.
        return Response(data, status=status.HTTP_201_CREATED, headers={"x-hook-secret": serializer.instance.secret})

    @action(detail=True, methods=["post"])
    def rotate_secret(self, request, project_id=None, pk=None):
        subscription = self.get_object()
        subscription.previous_secret = subscription.secret
        subscription.previous_secret_expires_at = timezone.now() + timedelta(
            seconds=settings.HOOKS_SECRET_ROTATION_GRACE_S
        )
        subscription.secret = signing.new_secret()
        subscription.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        return Response({"secret": subscription.secret})


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

    @action(detail=True, methods=["post"])
    def redeliver(self, request, project_id=None, pk=None):
        delivery = self.get_object()
        if delivery.event == events.OPERATOR_SELECT:
            # Its answer only mattered at the moment the conversation was routed.
            raise ValidationError({"event": ["operator.select calls are synchronous and cannot be redelivered."]})
        tasks.redeliver(delivery)
        return Response({"id": delivery.pk, "status": Delivery.Status.PENDING}, status=status.HTTP_202_ACCEPTED)


class EventCatalogView(APIView):
    """The event catalog: every name a subscription may use, with the payload it carries."""

    permission_classes = [AllowAny]
    pagination_class = None

    def get(self, request):
        return Response(
            [
                {
                    "name": event.name,
                    "description": event.description,
                    "payload": event.payload,
                    "example": events.example_payload(
                        event.name.replace("<channel>", "chat21").replace("<name>", "typing.start")
                    ),
                }
                for event in events.CATALOG
            ]
        )
