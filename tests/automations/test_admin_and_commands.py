"""Admin pages, purge_runs and the demo seed."""

import json
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from automations.models import Automation, Run
from support.models import Project


def test_purge_runs_deletes_only_runs_older_than_the_given_days(project, make_automation):
    automation = make_automation([{"action": "stop"}])
    old = Run.objects.create(automation=automation, project=project, method="POST")
    recent = Run.objects.create(automation=automation, project=project, method="POST")
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    Run.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=2))
    out = StringIO()
    call_command("purge_runs", "--older-than", "7", stdout=out)
    assert list(Run.objects.values_list("pk", flat=True)) == [recent.pk]
    assert "Deleted 1 run(s)" in out.getvalue()


def test_purge_runs_defaults_to_the_retention_setting(project, make_automation, settings):
    settings.AUTOMATION_RUN_RETENTION_DAYS = 1
    automation = make_automation([{"action": "stop"}])
    old = Run.objects.create(automation=automation, project=project, method="POST")
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    call_command("purge_runs", stdout=StringIO())
    assert not Run.objects.exists()


def test_seed_demo_installs_the_three_examples_once(db):
    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    project = Project.objects.get(name="Demo project")
    names = sorted(Automation.objects.filter(project=project).values_list("name", flat=True))
    assert names == ["Fire and forget", "Inbound lead", "Order status"]
    assert "Inbound lead (new): POST http://" in first.getvalue()
    assert "/webhook/" in second.getvalue() and "(new)" not in second.getvalue()


def test_admin_lists_automations_with_urls_and_last_run(admin_client, project, make_automation):
    automation = make_automation([{"action": "stop"}], name="Greeter")
    Run.objects.create(automation=automation, project=project, method="POST", status="failed")
    page = admin_client.get("/admin/automations/automation/").content.decode()
    assert "Greeter" in page and f"/webhook/{automation.webhook_id}/dev" in page and "failed" in page
    change = admin_client.get(f"/admin/automations/automation/{automation.pk}/change/").content.decode()
    assert f"/automations/{automation.pk}/debug/" in change


def test_admin_actions_disable_enable_and_regenerate(admin_client, make_automation):
    automation = make_automation([{"action": "stop"}])
    old_id = automation.webhook_id
    url = "/admin/automations/automation/"
    admin_client.post(url, {"action": "disable", "_selected_action": [automation.pk]})
    automation.refresh_from_db()
    assert automation.enabled is False
    admin_client.post(url, {"action": "enable", "_selected_action": [automation.pk]})
    automation.refresh_from_db()
    assert automation.enabled is True
    admin_client.post(url, {"action": "regenerate", "_selected_action": [automation.pk]})
    automation.refresh_from_db()
    assert automation.webhook_id != old_id


def test_admin_run_page_is_read_only_with_pretty_trace(admin_client, project, make_automation):
    automation = make_automation([{"action": "stop"}])
    trace = [{"id": "s1", "action": "log", "output": "<b>hi</b>", "error": None, "variables": {}, "duration_ms": 1}]
    run = Run.objects.create(automation=automation, project=project, method="POST", trace=trace, status="succeeded")
    page = admin_client.get(f"/admin/automations/run/{run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&lt;b&gt;hi&lt;/b&gt;" in html  # escaped, pretty-printed
    assert json.dumps(trace, indent=2).splitlines()[1].strip().replace('"', "&quot;") in html
    assert admin_client.get("/admin/automations/run/add/").status_code == 403
    assert admin_client.post(f"/admin/automations/run/{run.pk}/change/", {}).status_code == 403


def test_admin_validates_flows_like_the_api(admin_client, project, admin_user):
    url = "/admin/automations/automation/add/"
    bad = {"project": project.pk, "name": "x", "enabled": "on", "flow": '{"steps": [{"action": "teleport"}]}'}
    page = admin_client.post(url, bad)
    assert page.status_code == 200 and "unknown action &#x27;teleport&#x27;" in page.content.decode()
    good = {**bad, "flow": '{"steps": [{"action": "log", "message": "hi"}]}'}
    assert admin_client.post(url, good).status_code == 302
    assert Automation.objects.get(name="x").flow == {"steps": [{"action": "log", "message": "hi", "id": "log_1"}]}
