"""Tiledesk's paths: sign-in, subscriptions, and what its client calls back (requests, messages,
events, leads, bots). Mounted at the site root and under `/v3/` (the base path of Tiledesk's API and of
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
    re_path(
        PROJECT + r"requests/?$",
        views.RequestViewSet.as_view({"get": "list"}),
        name="tiledesk-request-list",
    ),
    re_path(
        PROJECT + r"requests/(?P<request_id>[^/]+)/?$",
        views.RequestViewSet.as_view({"get": "retrieve"}),
        name="tiledesk-request-detail",
    ),
    re_path(
        PROJECT + r"requests/(?P<request_id>[^/]+)/close/?$",
        views.RequestViewSet.as_view({"put": "close"}),
        name="tiledesk-request-close",
    ),
    re_path(
        PROJECT + r"requests/(?P<request_id>[^/]+)/participants/?$",
        views.RequestViewSet.as_view({"put": "participants"}),
        name="tiledesk-request-participants",
    ),
    re_path(
        PROJECT + r"requests/(?P<request_pk>[^/]+)/messages/?$",
        views.MessageViewSet.as_view({"get": "list", "post": "create"}),
        name="tiledesk-message-list",
    ),
    re_path(PROJECT + r"events/?$", views.EventViewSet.as_view({"post": "create"}), name="tiledesk-event-list"),
    re_path(
        PROJECT + r"leads/(?P<pk>[^/]+)/?$",
        views.LeadViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="tiledesk-lead-detail",
    ),
    re_path(PROJECT + r"(?:faq_kb|bots)/?$", views.BotViewSet.as_view({"get": "list"}), name="tiledesk-bot-list"),
    re_path(
        PROJECT + r"(?:faq_kb|bots)/(?P<pk>[^/]+)/?$",
        views.BotViewSet.as_view({"get": "retrieve"}),
        name="tiledesk-bot-detail",
    ),
]
