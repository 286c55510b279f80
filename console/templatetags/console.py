"""Template tags of the operator's console: the admin index dashboard and pretty JSON."""

import json

from django import template
from django.utils.html import format_html

from subscriptions.models import Delivery
from support.models import Project

from .. import charts, stats
from ..workers import heartbeat

register = template.Library()

COLOURS = {"success": "#3a8f3a", "failed": "#c0392b", "pending": "#9aa5b1"}
MAX_PROJECTS = 20


@register.inclusion_tag("admin/console/dashboard.html", takes_context=True)
def console_dashboard(context) -> dict:
    """Per project (most recently active first) the last 24 h; global queue and worker state."""
    projects = Project.objects.order_by("-updated_at")[:MAX_PROJECTS]
    summaries = []
    for project in projects:
        summary = stats.project_summary(project)
        series = [(status, COLOURS[status], summary.by_hour[status]) for status in ("success", "failed", "pending")]
        summaries.append(
            {"summary": summary, "chart": charts.stacked_bars(summary.hours, series, f"{project.name}: deliveries")}
        )
    try:
        beat, beat_error = heartbeat(), ""
    except Exception as exc:  # the broker is down: say so on the page instead of failing it
        beat, beat_error = None, f"{type(exc).__name__}: {exc}"
    return {
        "summaries": summaries,
        "pending_total": Delivery.objects.filter(status=Delivery.Status.PENDING).count(),
        "heartbeat": beat,
        "heartbeat_error": beat_error,
    }


@register.filter
def pretty_json(value) -> str:
    """JSON (or a JSON string) indented for reading; anything else as it is, escaped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre class="console-json">{}</pre>', value)
    return format_html(
        '<pre class="console-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    )


@register.filter
def percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"
