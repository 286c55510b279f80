"""Admin actions of the operator's console on subscriptions. They call the same functions as the
API (`publish_to_subscription` for a test event, `replay` for recovery), so the admin and the API
cannot drift apart."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils import timezone

from subscriptions import publishing, replay


@admin.action(description="Send test event")
def send_test_event(modeladmin, request, queryset):
    """An example of each selected subscription's event, through the real pipeline (logged as usual)."""
    sent = [publishing.publish_test_event(s) for s in queryset]
    ids = ", ".join(test.delivery_id for test in sent)
    modeladmin.message_user(request, f"{len(sent)} test event(s) queued: delivery {ids}.", messages.SUCCESS)
    if unmatched := [test.delivery_id for test in sent if not test.filter_matches]:
        modeladmin.message_user(
            request,
            f"The example does not meet the filter of delivery {', '.join(unmatched)}'s subscription: "
            "a real event like it would not be delivered.",
            messages.WARNING,
        )


def moment_field(help_text: str, required: bool = True) -> forms.DateTimeField:
    """A UTC moment, typed or picked (the browser's datetime-local input)."""
    return forms.DateTimeField(
        required=required,
        help_text=help_text,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
    )


def a_day_ago() -> str:
    return (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")


def action_page(modeladmin, request, queryset, form, *, template: str, title: str, action: str) -> TemplateResponse:
    """The page an action shows before it acts: the selected subscriptions and the form it needs."""
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "opts": modeladmin.model._meta,
            "subscriptions": queryset.select_related("project"),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": action,
        },
    )


class ReplayForm(forms.Form):
    SCOPES = (("subscription", "these subscriptions"), ("project", "every subscription of their projects"))

    since = moment_field("UTC, e.g. 2026-11-23 08:00. Failed deliveries created at or after it are sent again.")
    scope = forms.ChoiceField(choices=SCOPES, initial="subscription", widget=forms.RadioSelect)


@admin.action(description="Replay failed deliveries since…")
def replay_failed_since(modeladmin, request, queryset):
    """Asks the time (and whether for the selected subscriptions or their whole projects) on an
    intermediate page, then starts a new round of attempts on every failed delivery since then."""
    form = ReplayForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        since = form.cleaned_data["since"]
        if form.cleaned_data["scope"] == "project":
            projects = {s.project for s in queryset.select_related("project")}
            replayed = [pk for project in projects for pk in replay.replay(replay.failed_since(since, project=project))]
            where = f"{len(projects)} project(s)"
        else:
            replayed = [pk for s in queryset for pk in replay.replay(replay.failed_since(since, subscription=s))]
            where = f"{queryset.count()} subscription(s)"
        modeladmin.message_user(
            request,
            f"{len(replayed)} failed delivery(ies) of {where} since {since:%Y-%m-%d %H:%M} UTC queued again.",
            messages.SUCCESS,
        )
        return None
    if not form.is_bound:
        form = ReplayForm(initial={"since": a_day_ago()})
    return action_page(
        modeladmin,
        request,
        queryset,
        form,
        template="admin/subscriptions/subscription/replay_failed.html",
        title="Replay failed deliveries",
        action="replay_failed_since",
    )
