"""The debug page of an automation: development runs appear live as they arrive.

The page polls a small JSON endpoint (no websockets, no assets from elsewhere: the script is inline
and served with the page). Only members of the automation's project see either; anyone else gets
404, as in the API."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from support.filters import MomentField
from support.models import MANAGER_ROLES
from support.permissions import membership_of

from .models import Automation, Run
from .serializers import RunSerializer, webhook_urls

RUNS_SHOWN = 20


def _visible_automation(request: HttpRequest, automation_id: str) -> Automation:
    automation = Automation.objects.select_related("project").filter(pk=automation_id).first()
    if automation is None or membership_of(request.user, automation.project_id) is None:
        raise Http404("No such automation.")
    return automation


@login_required
def debug_page(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = _visible_automation(request, automation_id)
    membership = membership_of(request.user, automation.project_id)
    replay_base = reverse("automation-runs", kwargs={"project_id": automation.project_id, "pk": automation.pk})
    context = {
        "automation": automation,
        **webhook_urls(automation, request),
        "poll_ms": 700,
        "can_replay": membership.role in MANAGER_ROLES,
        "replay_base": replay_base,
    }
    return render(request, "automations/debug.html", context)


@login_required
def debug_runs(request: HttpRequest, automation_id: str) -> JsonResponse:
    """The latest development runs, newest first (`?since=<ISO time>` for only newer changes)."""
    automation = _visible_automation(request, automation_id)
    runs = Run.objects.filter(automation=automation, mode=Run.Mode.DEVELOPMENT)
    try:
        since = MomentField(required=False).clean(request.GET.get("since") or None)
    except ValidationError as exc:
        return JsonResponse({"since": exc.messages}, status=400)
    if since is not None:
        runs = runs.filter(updated_at__gt=since)
    runs = runs.order_by("-created_at", "-id")[:RUNS_SHOWN]
    data = RunSerializer(runs, many=True, context={"project": automation.project}).data
    return JsonResponse({"automation": automation.pk, "enabled": automation.enabled, "runs": data})
