"""Tiledesk's paths. Mounted at the site root and under `/v3/` (the base path of Tiledesk's API and of
its clients), with or without a trailing slash; after every other route, so that they never shadow
one (a project id is any first path segment here)."""

from django.urls import path, re_path

from . import views

signin = [
    path("signin", views.SigninView.as_view(), name="tiledesk-signin"),
    path("signin/", views.SigninView.as_view()),
]

PROJECT = r"^(?P<project_id>[^/]+)/"
projects = [
    re_path(
        PROJECT + r"subscriptions/?$",
        views.SubscriptionViewSet.as_view({"get": "list", "post": "create"}),
        name="tiledesk-subscription-list",
    ),
    # Before the detail route, so that "history" is not read as a subscription id.
    re_path(
        PROJECT + r"subscriptions/history/?$",
        views.SubscriptionHistoryView.as_view(),
        name="tiledesk-subscription-history",
    ),
    re_path(
        PROJECT + r"subscriptions/(?P<pk>[^/]+)/?$",
        views.SubscriptionViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="tiledesk-subscription-detail",
    ),
]
