"""Mounted at the site root: the inbound webhook endpoints, the debug page and the design studio."""

from django.urls import path

from . import debug, studio, webhook

app_name = "automations"

urlpatterns = [
    path("webhook/<str:webhook_id>", webhook.webhook, name="webhook"),
    path("webhook/<str:webhook_id>/", webhook.webhook),
    path("webhook/<str:webhook_id>/dev", webhook.webhook, {"dev": True}, name="webhook-dev"),
    path("webhook/<str:webhook_id>/dev/", webhook.webhook, {"dev": True}),
    path("webhook/<str:webhook_id>/dev/<path:rest>", webhook.webhook, {"dev": True}),
    path("webhook/<str:webhook_id>/<path:rest>", webhook.webhook),
    path("automations/<str:automation_id>/debug/", debug.debug_page, name="debug"),
    path("automations/<str:automation_id>/debug/runs.json", debug.debug_runs, name="debug-runs"),
    path("automations/<str:automation_id>/studio/", studio.studio_page, name="studio"),
    path("projects/<str:project_id>/automations/", studio.automation_list, name="list"),
]
