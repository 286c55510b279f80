from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

scoped = DefaultRouter()
scoped.include_root_view = False
scoped.register("subscriptions", views.SubscriptionViewSet, basename="subscription")
scoped.register("deliveries", views.DeliveryViewSet, basename="delivery")

urlpatterns = [
    path("events/", views.EventCatalogView.as_view(), name="event-catalog"),
    # Before the router, so that "logs" and "history" are not read as subscription ids.
    path("projects/<str:project_id>/subscriptions/logs/", views.AttemptLogView.as_view(), name="subscription-logs"),
    path(
        "projects/<str:project_id>/subscriptions/history/", views.AttemptLogView.as_view(), name="subscription-history"
    ),
    path("projects/<str:project_id>/", include(scoped.urls)),
]
