"""Automation runs by status on the dashboard and in /metrics."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from automations.models import Automation, Run


@pytest.fixture
def runs(project):
    automation = Automation.objects.create(project=project, name="Greeter", flow={"steps": []})
    for status in ("succeeded", "succeeded", "failed"):
        Run.objects.create(automation=automation, project=project, method="POST", status=status)


def test_dashboard_shows_automation_runs_by_status(client, make_user, runs):
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))

    html = client.get("/admin/").content.decode()

    [card] = re.findall(r'<div class="console-card console-runs">.*?</div>\s*</div>', html, re.S)
    assert "<strong>2</strong> succeeded" in card and "<strong>1</strong> failed" in card


def test_metrics_count_automation_runs_by_status(client, runs):
    text = client.get("/metrics").content.decode()
    samples = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "automation_runs"
        for sample in family.samples
    }
    assert samples == {"succeeded": 2, "failed": 1}
