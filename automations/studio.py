"""The design studio: a project's automations (`/projects/{pid}/automations/`) and the page where
one is built, tested and watched (`/automations/{id}/studio/`).

Both pages are a shell around the public API: the list and the studio read and write automations,
validate flows, send test calls and replay runs through `/api/...` with the member's session and
CSRF token, exactly as the browsable API does, so the studio can do nothing the API would refuse.
Owners and admins edit; agents see the same page read-only; anyone else gets 404, as in the API.

The page is served with a Content-Security-Policy allowing only this origin's scripts and styles:
run values come from whoever called the webhook URL, and the page never renders them as markup."""

from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse

from support.models import MANAGER_ROLES
from support.permissions import membership_of

from .actions import HTTP_METHODS, OPS
from .models import Automation, Run
from .serializers import webhook_urls

STUDIO_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
POLL_MS = 1000


def _with_policy(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = STUDIO_POLICY
    return response


def _membership(request: HttpRequest, project_id: str):
    membership = membership_of(request.user, project_id)
    if membership is None:
        raise Http404("No such project.")
    return membership


@login_required
def automation_list(request: HttpRequest, project_id: str) -> HttpResponse:
    """The project's automations, newest first, with their last run's status."""
    membership = _membership(request, project_id)
    latest = Run.objects.filter(automation=OuterRef("pk")).order_by("-created_at")
    automations = (
        Automation.objects.filter(project_id=project_id)
        .annotate(last_status=Subquery(latest.values("status")[:1]))
        .order_by("-created_at")
    )
    config = {
        "api": reverse("automation-list", kwargs={"project_id": project_id}),
        "studio": reverse("automations:studio", args=["AUTOMATION_ID"]),
        "csrf": get_token(request),
    }
    context = {
        "project": membership.project,
        "automations": automations,
        "can_edit": membership.role in MANAGER_ROLES,
        "config": config,
    }
    return _with_policy(render(request, "automations/automation_list.html", context))


@login_required
def studio_page(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = Automation.objects.select_related("project").filter(pk=automation_id).first()
    if automation is None:
        raise Http404("No such automation.")
    membership = _membership(request, automation.project_id)
    scope = {"project_id": automation.project_id}
    config = {
        "automation": reverse("automation-detail", kwargs={**scope, "pk": automation.pk}),
        "automations": reverse("automation-list", kwargs=scope),
        "secrets": f"/api/projects/{automation.project_id}/secrets/",
        "can_edit": membership.role in MANAGER_ROLES,
        "role": membership.role,
        "csrf": get_token(request),
        "poll_ms": POLL_MS,
        "methods": list(HTTP_METHODS),
        "ops": list(OPS),
    }
    context = {
        "automation": automation,
        "project": automation.project,
        "can_edit": config["can_edit"],
        "config": config,
        **webhook_urls(automation, request),
    }
    return _with_policy(render(request, "automations/studio.html", context))
