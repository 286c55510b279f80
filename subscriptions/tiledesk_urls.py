"""Tiledesk's own REST Hooks paths, for clients written for Tiledesk (its Zapier and Make apps,
scripts): `/{project_id}/subscriptions[/{id}|/history]`, with or without a trailing slash.

They run the very views of /api/ (same permissions, serializers and JSON); only authentication
differs: a DRF token or HTTP basic auth, as such clients send, and no session."""

from django.urls import re_path
from rest_framework.authentication import BasicAuthentication, TokenAuthentication

from . import views

CLIENT_AUTH = {"authentication_classes": [BasicAuthentication, TokenAuthentication]}
PROJECT = r"^(?P<project_id>[^/]+)/subscriptions"

urlpatterns = [
    re_path(
        PROJECT + r"/?$",
        views.SubscriptionViewSet.as_view({"get": "list", "post": "create"}, **CLIENT_AUTH),
        name="tiledesk-subscription-list",
    ),
    # Before the detail route, so that "history" is not read as a subscription id.
    re_path(
        PROJECT + r"/history/?$", views.AttemptLogView.as_view(**CLIENT_AUTH), name="tiledesk-subscription-history"
    ),
    re_path(
        PROJECT + r"/(?P<pk>[^/]+)/?$",
        views.SubscriptionViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}, **CLIENT_AUTH
        ),
        name="tiledesk-subscription-detail",
    ),
]
