"""Tiledesk's own REST Hooks paths, for clients written for Tiledesk (its Zapier and Make apps,
scripts): `/{project_id}/subscriptions[/{id}|/history]`, with or without a trailing slash.

They run the very views of /api/ (same permissions, serializers and objects); what differs is what
such clients expect around them: a DRF token or HTTP basic auth and no session, lists as plain JSON
arrays, and Tiledesk's history pages (`?page=N` from 0, 40 rows each)."""

from django.urls import re_path
from rest_framework.authentication import BasicAuthentication, TokenAuthentication
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from . import views


class TiledeskHistoryPagination(BasePagination):
    """Tiledesk's subscription history paging: `?page=N` counted from 0, 40 rows, a plain array."""

    page_size = 40

    def paginate_queryset(self, queryset, request, view=None):
        try:
            page = max(int(request.query_params.get("page", 0)), 0)
        except ValueError:
            page = 0
        return list(queryset[page * self.page_size : (page + 1) * self.page_size])

    def get_paginated_response(self, data):
        return Response(data)


CLIENT_AUTH = {"authentication_classes": [BasicAuthentication, TokenAuthentication]}
PROJECT = r"^(?P<project_id>[^/]+)/subscriptions"

urlpatterns = [
    re_path(
        PROJECT + r"/?$",
        views.SubscriptionViewSet.as_view({"get": "list", "post": "create"}, pagination_class=None, **CLIENT_AUTH),
        name="tiledesk-subscription-list",
    ),
    # Before the detail route, so that "history" is not read as a subscription id.
    re_path(
        PROJECT + r"/history/?$",
        views.AttemptLogView.as_view(pagination_class=TiledeskHistoryPagination, **CLIENT_AUTH),
        name="tiledesk-subscription-history",
    ),
    re_path(
        PROJECT + r"/(?P<pk>[^/]+)/?$",
        views.SubscriptionViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}, **CLIENT_AUTH
        ),
        name="tiledesk-subscription-detail",
    ),
]
