"""Admin: automations with their URLs, enable/disable/regenerate actions and last run status; runs
read-only, with the trace and the exchange pretty-printed."""

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html

from .flow import validate_flow
from .inbound import InboundRefused
from .models import Automation, Run
from .replay import replay as replay_run


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; max-width: 1000px; margin: 0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, default=str),
    )


class AutomationForm(forms.ModelForm):
    """The admin saves flows through the same validation as the API (and gets the same messages)."""

    class Meta:
        model = Automation
        fields = ("project", "name", "enabled", "flow", "created_by")

    def clean_flow(self):
        checked = validate_flow(self.cleaned_data.get("flow"))
        if checked.problems:
            raise forms.ValidationError(checked.problems)
        return checked.flow


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    form = AutomationForm
    list_display = ("name", "project", "enabled", "webhook_links", "last_run_status", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("name", "id", "webhook_id", "project__name")
    readonly_fields = ("id", "webhook_id", "webhook_links", "debug_link", "created_at", "updated_at")
    raw_id_fields = ("project", "created_by")
    actions = ("enable", "disable", "regenerate")

    def save_model(self, request, obj: Automation, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        for warning in validate_flow(obj.flow).warnings:
            text = f"{warning['path']} ({warning['step_id']}): {warning['message']}"
            self.message_user(request, text, messages.WARNING)

    @admin.display(description="URLs")
    def webhook_links(self, obj: Automation) -> str:
        if not obj.webhook_id:
            return "-"
        production = reverse("automations:webhook", kwargs={"webhook_id": obj.webhook_id})
        development = reverse("automations:webhook-dev", kwargs={"webhook_id": obj.webhook_id})
        return format_html("<code>{}</code><br><code>{}</code>", production, development)

    @admin.display(description="Debug page")
    def debug_link(self, obj: Automation) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">live debug</a>', reverse("automations:debug", args=[obj.pk]))

    def get_queryset(self, request):
        latest = Run.objects.filter(automation=OuterRef("pk")).order_by("-created_at")
        return super().get_queryset(request).annotate(last_status=Subquery(latest.values("status")[:1]))

    @admin.display(description="Last run", ordering="last_status")
    def last_run_status(self, obj: Automation) -> str:
        return getattr(obj, "last_status", None) or "-"

    @admin.action(description="Enable selected automations")
    def enable(self, request, queryset) -> None:
        self.message_user(request, f"{queryset.update(enabled=True)} automation(s) enabled.")

    @admin.action(description="Disable selected automations")
    def disable(self, request, queryset) -> None:
        self.message_user(request, f"{queryset.update(enabled=False)} automation(s) disabled.")

    @admin.action(description="Regenerate webhook ids (old URLs stop working)")
    def regenerate(self, request, queryset) -> None:
        for automation in queryset:
            automation.regenerate_webhook_id()
        self.message_user(request, f"{queryset.count()} webhook id(s) regenerated.", messages.WARNING)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "automation", "mode", "method", "status", "duration_ms", "created_at")
    list_filter = ("mode", "status", "project")
    search_fields = ("id", "automation__name", "automation__id")
    date_hierarchy = "created_at"
    list_select_related = ("automation",)
    fields = (
        "id", "automation", "project", "mode", "method", "status", "error", "duration_ms", "created_at",
        "finished_at", "content_type", "query_pretty", "headers_pretty", "body", "body_truncated",
        "response_pretty", "trace_pretty", "replay_of",
    )  # fmt: skip
    readonly_fields = fields
    actions = ("replay",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Replay selected runs against the current flow (development runs)")
    def replay(self, request, queryset) -> None:
        for original in queryset.select_related("automation__project"):
            try:
                run = replay_run(original, original.automation, Run.Mode.DEVELOPMENT)
            except InboundRefused as refused:
                self.message_user(request, f"Run {original.pk}: {refused.detail}", messages.ERROR)
            else:
                self.message_user(request, f"Run {original.pk} replayed as run {run.pk}: {run.status}.")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="query")
    def query_pretty(self, obj: Run) -> str:
        return pretty_json(obj.query)

    @admin.display(description="headers (values redacted)")
    def headers_pretty(self, obj: Run) -> str:
        return pretty_json(obj.headers)

    @admin.display(description="response")
    def response_pretty(self, obj: Run) -> str:
        return pretty_json(obj.response)

    @admin.display(description="trace")
    def trace_pretty(self, obj: Run) -> str:
        return pretty_json(obj.trace)
