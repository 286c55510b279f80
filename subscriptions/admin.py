"""The operator's console for REST Hooks: subscriptions, deliveries and their attempts."""

import json

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q
from django.utils.html import format_html

from console import charts
from console.admin_actions import a_day_ago, action_page, moment_field, replay_failed_since, send_test_event

from . import replay, signing, stats, tasks
from .models import Attempt, Delivery, Subscription
from .serializers import OPERATOR_DISABLED


def pretty_json(value) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return format_html("<pre>{}</pre>", value)
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


STATUS_COLOURS = {"success": "#3a8f3a", "failed": "#c0392b", "pending": "#9aa5b1", "skipped": "#d4a017"}


class ReplayMissingForm(forms.Form):
    since = moment_field("UTC. Skipped deliveries created at or after it are queued.")
    until = moment_field("UTC, optional: and at or before it.", required=False)


@admin.action(description="Queue deliveries missed while disabled…")
def replay_missing(modeladmin, request, queryset):
    """Asks the window on an intermediate page, then queues each selected enabled subscription's
    skipped deliveries of it (the API's replay_missing)."""
    form = ReplayMissingForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        since, until = form.cleaned_data["since"], form.cleaned_data["until"]
        queued = [pk for s in queryset.filter(enabled=True) for pk in replay.replay_missing(s, since, until)]
        modeladmin.message_user(request, f"{len(queued)} missed delivery(ies) queued.", messages.SUCCESS)
        return None
    if not form.is_bound:
        form = ReplayMissingForm(initial={"since": a_day_ago()})
    return action_page(
        modeladmin,
        request,
        queryset,
        form,
        template="admin/subscriptions/subscription/replay_missing.html",
        title="Queue deliveries missed while disabled",
        action="replay_missing",
    )


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    # A scheme-less target typed in the form becomes https:// (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = (
        "event",
        "target",
        "project",
        "enabled",
        "last_outcome",
        "success_rate",
        "disabled_reason",
        "created_at",
    )
    list_editable = ("enabled",)
    list_filter = ("enabled", "event", "project")
    search_fields = ("target", "event", "project__name", "id")
    readonly_fields = ("id", "masked_secret", "created_by", "created_at", "updated_at", "disabled_reason")
    exclude = ("secret", "previous_secret", "previous_secret_expires_at")
    # send_test_event and replay_failed_since: the console's.
    actions = ("enable", "disable", send_test_event, replay_failed_since, replay_missing)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("project")
            .annotate(
                attempts_total=Count("attempts"),
                attempts_ok=Count("attempts", filter=Q(attempts__outcome=Attempt.Outcome.SUCCESS)),
            )
        )

    @admin.display(description="secret")
    def masked_secret(self, obj) -> str:
        return signing.mask_secret(obj.secret)

    @admin.display(description="last outcome")
    def last_outcome(self, obj) -> str:
        last = obj.attempts.order_by("-created_at").values_list("outcome", "status_code").first()
        return f"{last[0]} ({last[1] or 'no response'})" if last else "-"

    @admin.display(description="success rate", ordering="attempts_ok")
    def success_rate(self, obj) -> str:
        return (
            f"{100 * obj.attempts_ok / obj.attempts_total:.0f}% of {obj.attempts_total}" if obj.attempts_total else "-"
        )

    @admin.action(description="Enable selected subscriptions")
    def enable(self, request, queryset):
        for subscription in queryset:
            subscription.enable()
        self.message_user(request, f"{len(queryset)} subscription(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected subscriptions")
    def disable(self, request, queryset):
        for subscription in queryset:
            subscription.disable(OPERATOR_DISABLED)
        self.message_user(request, f"{len(queryset)} subscription(s) disabled.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        turned = change and "enabled" in form.changed_data
        wanted = obj.enabled
        if turned:  # the form only asks; the lifecycle changes it (and announces it)
            obj.enabled = not wanted
        super().save_model(request, obj, form, change)
        # The form (and the list's "enabled" checkbox) changes the flag; the lifecycle does the rest.
        if turned:
            obj.enable() if wanted else obj.disable(OPERATOR_DISABLED)

    def changelist_view(self, request, extra_context=None):
        self._warn_of_disabled(request, Subscription.objects.filter(enabled=False).exclude(disabled_reason=""))
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = Subscription.objects.filter(pk=object_id).first()
        if request.method == "GET" and subscription is not None:
            self._warn_of_disabled(request, Subscription.objects.filter(pk=object_id, enabled=False))
            hours, by_hour = stats.deliveries_by_hour(subscription)
            series = [(status, STATUS_COLOURS[status], by_hour[status]) for status in STATUS_COLOURS]
            extra_context = {
                **(extra_context or {}),
                "stats": stats.subscription_stats(subscription),
                "stats_chart": charts.stacked_bars(hours, series, "deliveries, last 24 h"),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _warn_of_disabled(self, request, disabled) -> None:
        """The banner: what stopped, and why, above the page."""
        rows = list(disabled.order_by("-updated_at").values_list("pk", "target", "disabled_reason")[:5])
        for pk, target, reason in rows:
            self.message_user(
                request,
                f"Subscription {pk} to {target} is disabled: {reason or OPERATOR_DISABLED} "
                "Nothing is sent to it until it is enabled again.",
                messages.WARNING,
            )


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("attempt", "created_at", "outcome", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event",
        "subscription",
        "project",
        "status",
        "attempt_count",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event", "project", "created_at")
    search_fields = ("id", "subscription__target", "event")
    readonly_fields = (
        "id",
        "project",
        "subscription",
        "event",
        "status",
        "attempt_count",
        "next_attempt_at",
        "locked_until",
        "last_error",
        "decision",
        "created_at",
        "updated_at",
        "payload",
    )
    exclude = ("event_payload", "round_started_after")
    inlines = (AttemptInline,)
    actions = ("redeliver",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="payload")
    def payload(self, obj) -> str:
        return pretty_json(obj.event_payload.payload)

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset):
        refused = [delivery.pk for delivery in queryset if not delivery.redeliverable]
        queued = [delivery for delivery in queryset if delivery.redeliverable]
        for delivery in queued:
            tasks.redeliver(delivery)
        self.message_user(request, f"{len(queued)} delivery(ies) queued again.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"Not redelivered (operator.select calls are synchronous): {', '.join(refused)}.",
                messages.WARNING,
            )


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    """Read-only: the log of what was sent and what came back."""

    list_display = ("created_at", "event", "target", "attempt", "outcome", "status_code", "duration_ms", "project")
    list_filter = ("outcome", "status_code", "event", "project", "created_at")
    search_fields = ("target", "delivery__id", "error")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "project",
        "delivery",
        "subscription",
        "event",
        "attempt",
        "target",
        "outcome",
        "status_code",
        "error",
        "duration_ms",
        "created_at",
        "pretty_request_headers",
        "pretty_request_body",
        "pretty_response_headers",
        "pretty_response_body",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="request headers")
    def pretty_request_headers(self, obj) -> str:
        return pretty_json(obj.request_headers)

    @admin.display(description="request body")
    def pretty_request_body(self, obj) -> str:
        return pretty_json(obj.request_body)

    @admin.display(description="response headers")
    def pretty_response_headers(self, obj) -> str:
        return pretty_json(obj.response_headers)

    @admin.display(description="response body")
    def pretty_response_body(self, obj) -> str:
        return pretty_json(obj.response_body)
