"""The design studio in a real browser (Debian's Chromium driven by Playwright against the live
server): an admin builds, saves, tests, fixes and replays a flow by clicking; a keyboard alone adds
a step; an agent only looks; a caller's markup never runs. Screenshots go to test-artifacts/.

Playwright's sync API runs an event loop in this thread while a page is open, so the ORM is used
only before opening the page and after closing it."""

from contextlib import contextmanager

import pytest
import requests

from automations.models import Automation, Run
from support.models import Request, Role
from tests.browser import chromium, screenshot, session_of, signed_in_context

pytestmark = pytest.mark.browser

LEAD = {"name": "Ann Lee", "email": "ann@example.com", "message": "Do you ship to Norway?"}


@contextmanager
def studio_as(user, live_server, path: str, shot_name: str):
    """A 1280 px wide page signed in as `user`, at `path`; JavaScript errors fail the test."""
    session = session_of(user)
    with chromium() as browser:
        page = signed_in_context(browser, live_server.url, session).new_page()
        page.set_default_timeout(10000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}{path}")
        yield page
        screenshot(page, f"{shot_name}-final")
        assert errors == []


def nothing_overflows(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def add_step(page, lane_label: str, action: str) -> None:
    page.get_by_role("button", name=lane_label, exact=True).click()
    page.locator(f"#palette .palette-action[data-action={action}]").click()


def card(page, step_id: str):
    return page.locator(f'li.card[data-step="{step_id}"]')


def field(page, step_id: str, key: str):
    return card(page, step_id).locator(f'.card-form .field[data-key="{key}"]').first.locator("input, textarea, select")


@pytest.fixture
def admin(add_member):
    return add_member("admin", Role.ADMIN)


@pytest.fixture
def empty_automation(make_automation):
    return make_automation([], name="Inbound lead")


def test_admin_creates_builds_tests_fixes_and_replays_the_inbound_lead_flow(live_server, admin, project):
    from playwright.sync_api import expect

    with studio_as(admin, live_server, f"/projects/{project.pk}/automations/", "studio-inbound-lead") as page:
        expect(page.locator("table.automations")).to_contain_text("No automations yet.")
        screenshot(page, "automations-list-empty")
        page.locator("#new-name").fill("Inbound lead")
        page.get_by_role("button", name="Create and open the studio").click()
        page.wait_for_url("**/studio/")
        expect(page.locator("#automation-name")).to_have_value("Inbound lead")
        expect(page.locator("#flow .lane-empty")).to_be_visible()
        expect(page.locator("#poll-state")).to_contain_text("Live")
        screenshot(page, "studio-empty")

        add_step(page, "Add a step to The flow", "condition")
        field(page, "condition_1", "if.left").fill("{{ payload.email }}")
        field(page, "condition_1", "if.op").select_option("exists")
        add_step(page, "Add a step to condition_1 then", "create_request")
        # A department that does not exist: the run will fail on this step.
        field(page, "create_request_1", "department").fill("Sales")
        add_step(page, "Add a step to condition_1 then", "response")
        field(page, "response_1", "status").fill("201")
        field(page, "response_1", "body").fill('{"request_id": "{{ request.request_id }}"}')
        add_step(page, "Add a step to condition_1 else", "response")
        field(page, "response_2", "status").fill("400")
        field(page, "response_2", "body").fill('{"error": "email is required"}')
        expect(page.locator("#save-state")).to_have_text("Unsaved changes")
        expect(card(page, "response_1").locator(".card-form .hint").first).to_contain_text("{{ request }}")
        expect(card(page, "condition_1").locator(".card-form .hint").first).not_to_contain_text("{{ request }}")
        expect(card(page, "response_2").locator(".card-form .hint")).not_to_contain_text("{{ request }}")
        screenshot(page, "studio-editing")

        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")

        page.locator("#test-call summary").click()
        page.locator("#test-body").fill(f'{{"name": "{LEAD["name"]}", "email": "{LEAD["email"]}", "message": "Hi"}}')
        page.locator("#send-test-call").click()
        expect(page.locator("#test-call-state")).to_contain_text("failed")
        failed = page.locator("#runs .run[data-status=failed]")
        expect(failed).to_have_count(1)
        expect(failed.locator(".run-step.step-failed")).to_contain_text("create_request_1")
        expect(failed.locator(".run-step").first).to_contain_text("→ then")
        expect(failed.locator(".run-step").first.locator(".compared")).to_have_text(
            f'"{LEAD["email"]}" exists → true (then)'
        )
        expect(card(page, "create_request_1").locator(".run-failure")).to_contain_text("department")
        assert nothing_overflows(page)
        screenshot(page, "studio-with-runs")

        field(page, "create_request_1", "department").fill("")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")
        failed.locator(".replay").click()
        succeeded = page.locator("#runs .run[data-status=succeeded]")
        expect(succeeded).to_have_count(1)
        expect(succeeded.locator(".run-head")).to_contain_text("replay of")
        expect(page.locator("#runs .run")).to_have_count(2)
        expect(card(page, "create_request_1").locator(".run-failure")).to_have_count(0)
        expect(succeeded).to_contain_text('"status": 201')
        assert nothing_overflows(page)
        screenshot(page, "studio-replayed")

    automation = Automation.objects.get(project=project, name="Inbound lead")
    condition = automation.flow["steps"][0]
    assert [condition["action"], condition["if"]["op"]] == ["condition", "exists"]
    assert [step["action"] for step in condition["then"]] == ["create_request", "response"]
    assert "department" not in condition["then"][0]
    assert condition["else"][0]["body"] == {"error": "email is required"}
    assert Request.objects.filter(project=automation.project, lead__email=LEAD["email"]).count() == 1
    runs = Run.objects.filter(automation=automation).order_by("created_at")
    assert [(run.mode, run.status) for run in runs] == [("development", "failed"), ("development", "succeeded")]
    assert runs[1].replay_of_id == runs[0].pk


def test_a_step_is_added_and_saved_with_the_keyboard_alone(live_server, admin, empty_automation):
    from playwright.sync_api import expect

    def tab_to(page, selector: str, backwards: bool = False) -> None:
        for _ in range(60):
            page.keyboard.press("Shift+Tab" if backwards else "Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        pytest.fail(f"Tab never reached {selector}")

    with studio_as(admin, live_server, f"/automations/{empty_automation.pk}/studio/", "studio-keyboard") as page:
        expect(page.locator("#poll-state")).to_contain_text("Live")
        tab_to(page, "button.add-step")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        page.keyboard.press("Enter")
        expect(page.locator("#palette")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("#palette")).to_be_hidden()
        assert page.evaluate("document.activeElement.matches('button.add-step')")
        page.keyboard.press("Enter")
        expect(page.locator("#palette")).to_be_visible()
        page.keyboard.press("Tab")  # from "Condition" to "Set variable"
        page.keyboard.press("Enter")
        expect(card(page, "set_1")).to_be_visible()
        tab_to(page, '.field[data-key="name"] input')
        page.keyboard.type("greeting")
        page.keyboard.press("Tab")
        page.keyboard.type("Hello {{ payload.name }}")
        tab_to(page, "#save", backwards=True)
        page.keyboard.press("Enter")
        expect(page.locator("#save-state")).to_contain_text("Saved at")

    empty_automation.refresh_from_db()
    assert empty_automation.flow["steps"] == [
        {"id": "set_1", "action": "set", "name": "greeting", "value": "Hello {{ payload.name }}"}
    ]


def test_an_agent_sees_the_studio_read_only(live_server, add_member, make_automation, hook):
    from playwright.sync_api import expect

    automation = make_automation([{"id": "answer", "action": "response", "status": 200, "body": {"ok": True}}])
    requests.post(hook(automation, dev=True), json={"hello": "world"}, timeout=10)
    agent = add_member("agent", Role.AGENT)
    with studio_as(agent, live_server, f"/automations/{automation.pk}/studio/", "studio-agent") as page:
        expect(card(page, "answer")).to_be_visible()
        expect(page.locator("#runs .run")).to_have_count(1)
        card(page, "answer").locator(".card-title").click()
        expect(field(page, "answer", "status")).to_have_attribute("readonly", "")
        for absent in ("#save", "button.add-step", ".card-tools", "#test-call", ".replay", "#regenerate"):
            assert page.locator(absent).count() == 0, absent
        expect(page.locator("#automation-enabled")).to_be_disabled()
        expect(page.locator("#flow-json")).to_have_attribute("readonly", "")

    automation.refresh_from_db()
    assert automation.flow["steps"][0]["body"] == {"ok": True}


HOSTILE = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'


def test_markup_a_caller_sent_is_shown_as_text_and_never_runs(live_server, owner, make_automation, hook):
    from playwright.sync_api import expect

    automation = make_automation(
        [
            {"id": "note", "action": "log", "message": "{{ payload.name }}"},
            {"id": "echo", "action": "response", "status": 200, "body": {"name": "{{ payload.name }}"}},
        ]
    )
    requests.post(
        hook(automation, dev=True) + "?q=" + requests.utils.quote(HOSTILE),
        json={"name": HOSTILE},
        headers={"X-Evil": HOSTILE},
        timeout=10,
    )
    with studio_as(owner, live_server, f"/automations/{automation.pk}/studio/", "studio-hostile") as page:
        run = page.locator("#runs .run")
        expect(run).to_have_count(1)
        expect(run.locator('.run-step[data-step="note"]')).to_contain_text(HOSTILE)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#debug img, #debug script").count() == 0
        assert nothing_overflows(page)


def test_cards_reorder_by_drag_and_buttons_duplicate_delete_and_follow_the_json_tab(
    live_server, admin, make_automation
):
    from playwright.sync_api import expect

    automation = make_automation(
        [
            {"id": "first", "action": "log", "message": "one"},
            {"id": "second", "action": "log", "message": "two"},
            {"id": "third", "action": "log", "message": "three"},
        ]
    )

    def order(page) -> list[str]:
        return page.locator("#flow > .lane-wrap > .lane > li.card").evaluate_all(
            "cards => cards.map(card => card.dataset.step)"
        )

    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-reorder") as page:
        expect(card(page, "third")).to_be_visible()
        card(page, "third").locator(".grip").drag_to(card(page, "first"))
        assert order(page) == ["third", "first", "second"]
        card(page, "first").locator(".move-up").click()
        assert order(page) == ["first", "third", "second"]
        card(page, "second").locator(".duplicate").click()
        assert order(page) == ["first", "third", "second", "log_1"]
        card(page, "third").locator(".delete").click()
        assert order(page) == ["first", "second", "log_1"]

        page.locator("#tab-json").click()
        text = page.locator("#flow-json").input_value()
        assert text.index('"first"') < text.index('"second"') < text.index('"log_1"') and '"third"' not in text
        page.locator("#flow-json").fill(text.replace('"two"', '"changed in JSON"', 1))
        page.locator("#tab-blocks").click()
        expect(card(page, "second")).to_contain_text("changed in JSON")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")

    automation.refresh_from_db()
    assert [(s["id"], s["message"]) for s in automation.flow["steps"]] == [
        ("first", "one"),
        ("second", "changed in JSON"),
        ("log_1", "two"),
    ]


def test_errors_show_on_their_card_while_typing_and_a_save_is_refused(live_server, admin, make_automation):
    from playwright.sync_api import expect

    automation = make_automation([{"id": "remember", "action": "set", "name": "who", "value": "x"}])
    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-problems") as page:
        expect(page.locator("#validation-state")).to_have_text("The flow is valid.")
        card(page, "remember").locator(".card-title").click()
        field(page, "remember", "name").fill("1who")
        expect(card(page, "remember").locator(".note.error")).to_contain_text("variable name")
        expect(page.locator("#validation-state")).to_have_text("1 error(s)")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Not saved")
        expect(card(page, "remember").locator(".note.error")).to_contain_text("variable name")
        screenshot(page, "studio-problems")
        field(page, "remember", "name").fill("who2")
        expect(card(page, "remember").locator(".note")).to_have_count(0)

    assert Automation.objects.get(pk=automation.pk).flow["steps"][0]["name"] == "who"


def test_a_side_effect_after_an_error_answer_is_warned_on_its_card_until_the_answer_ends_the_flow(
    live_server, admin, make_automation
):
    from playwright.sync_api import expect

    automation = make_automation(
        [
            {"id": "reject", "action": "response", "status": 400, "body": {"error": "no"}},
            {"id": "announce", "action": "emit_event", "name": "lead.rejected"},
        ]
    )
    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-warning") as page:
        expect(card(page, "announce").locator(".note.warning")).to_contain_text("after the caller was answered")
        card(page, "reject").locator(".card-title").click()
        field(page, "reject", "end").check()
        expect(card(page, "announce").locator(".note")).to_have_count(0)
        expect(card(page, "reject")).to_contain_text("ends the flow")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")

    assert Automation.objects.get(pk=automation.pk).flow["steps"][0]["end"] is True


def test_settings_save_cors_origins_inbound_auth_by_secret_name_and_the_ip_allowlist(
    live_server, admin, api, project, make_automation
):
    from playwright.sync_api import expect

    api.post(f"/api/projects/{project.pk}/secrets/", {"name": "FORM_KEY", "value": "form-key-8d1c2e"}, format="json")
    automation = make_automation([{"id": "answer", "action": "response", "status": 200, "body": {"ok": True}}])
    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-settings") as page:
        card(page, "answer").locator(".card-title").click()
        expect(card(page, "answer").locator(".card-form .hint")).to_contain_text("{{ secrets.FORM_KEY }}")
        page.locator("#settings-toggle").click()
        page.locator("#setting-cors").fill("https://site.example\nhttps://shop.example")
        page.locator("#setting-ips").fill("10.0.0.0/8")
        page.locator("#auth-type").select_option("header")
        expect(page.locator("#auth-username")).to_be_hidden()
        page.locator("#auth-header").fill("X-Form-Key")
        page.locator("#auth-secret").fill("NO_SUCH_SECRET")
        page.locator("#save").click()
        expect(page.locator("#settings-error")).to_contain_text("auth")
        page.locator("#auth-secret").fill("FORM_KEY")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")
        screenshot(page, "studio-settings")

    automation.refresh_from_db()
    assert automation.cors_origins == ["https://site.example", "https://shop.example"]
    assert automation.ip_allowlist == ["10.0.0.0/8"]
    assert automation.auth == {"type": "header", "header": "X-Form-Key", "secret": "FORM_KEY"}


def test_header_enables_copies_and_regenerates_only_after_confirmation(live_server, admin, make_automation):
    from playwright.sync_api import expect

    automation = make_automation([{"id": "answer", "action": "response", "status": 200, "body": {"ok": True}}])
    old_id = automation.webhook_id
    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-header") as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        expect(page.locator("#development-url")).to_contain_text(old_id)
        page.locator("button.copy[data-copy=development-url]").click()
        expect(page.locator("button.copy[data-copy=development-url]")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()").endswith(f"/webhook/{old_id}/dev")

        page.locator("#automation-enabled").uncheck()
        expect(page.locator("#save-state")).to_have_text("Disabled")

        page.locator("#regenerate").click()
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_timeout(300)
        expect(page.locator("#production-url")).to_contain_text(old_id)
        page.locator("#regenerate").click()
        page.locator("#regenerate-confirm").click()
        expect(page.locator("#production-url")).not_to_contain_text(old_id)
        shown = page.locator("#production-url").inner_text()

    automation.refresh_from_db()
    assert automation.enabled is False
    assert automation.webhook_id != old_id and shown.endswith(f"/webhook/{automation.webhook_id}")
    assert requests.post(f"{live_server.url}/webhook/{old_id}", json={}, timeout=10).status_code == 404


def test_long_values_fold_and_nothing_overflows_at_1280_px(live_server, owner, make_automation, hook):
    from playwright.sync_api import expect

    automation = make_automation([{"id": "keep", "action": "set", "name": "order", "value": "{{ payload }}"}])
    unbroken = "x" * 5000
    requests.post(hook(automation, dev=True), json={"blob": unbroken, **{f"k{i}": i for i in range(40)}}, timeout=10)
    with studio_as(owner, live_server, f"/automations/{automation.pk}/studio/", "studio-fold") as page:
        run = page.locator("#runs .run")
        expect(run).to_have_count(1)
        folded = run.locator(".labelled", has_text="Request body").locator("details.fold")
        expect(folded).to_have_count(1)
        expect(folded.locator("summary")).to_contain_text("characters")
        assert folded.evaluate("details => details.open") is False
        folded.locator("summary").click()
        expect(folded.locator("pre")).to_contain_text(unbroken)
        assert nothing_overflows(page)
        box = folded.locator("pre").bounding_box()
        assert box["x"] + box["width"] <= 1280


def test_a_for_each_shows_its_body_and_each_iteration_of_a_run(live_server, admin, make_automation):
    from playwright.sync_api import expect

    automation = make_automation(
        [
            {"id": "start", "action": "set", "name": "total", "value": 0},
            {"id": "lines", "action": "for_each", "items": "{{ payload.items }}", "as": "line", "steps": [
                {"id": "add", "action": "set", "name": "total", "value": "{{ total + line.qty * line.price }}"}
            ]},
            {"id": "answer", "action": "response", "status": 200, "body": {"total": "{{ total }}"}},
        ]
    )  # fmt: skip
    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-for-each") as page:
        body = card(page, "lines").locator(".branch-steps")
        expect(body.locator('li.card[data-step="add"]')).to_be_visible()
        add_step(page, "Add a step to lines for each item", "log")
        field(page, "log_1", "message").fill("line {{ line.qty }}")
        expect(card(page, "log_1").locator(".card-form .hint")).to_contain_text("{{ line }}")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")
        page.locator("#test-call summary").click()
        page.locator("#test-body").fill('{"items": [{"qty": 2, "price": 5}, {"qty": 1, "price": 3}]}')
        page.locator("#send-test-call").click()
        run = page.locator("#runs .run[data-status=succeeded]")
        expect(run).to_have_count(1)
        expect(run.locator('.run-step[data-step="log_1"]')).to_have_count(2)
        expect(run.locator('.run-step[data-step="log_1"]').nth(1)).to_contain_text("item 2")
        expect(run.locator(".labelled", has_text="Response")).to_contain_text('"total": 13')

    automation.refresh_from_db()
    assert [step["id"] for step in automation.flow["steps"][1]["steps"]] == ["add", "log_1"]


def test_a_json_field_takes_json_or_a_lone_template_and_says_when_it_is_neither(live_server, admin, make_automation):
    from playwright.sync_api import expect

    automation = make_automation([{"id": "echo", "action": "response", "status": 200, "body": {"ok": True}}])
    with studio_as(admin, live_server, f"/automations/{automation.pk}/studio/", "studio-json-field") as page:
        card(page, "echo").locator(".card-title").click()
        body = card(page, "echo").locator('.field[data-key="body"]')
        body.locator("textarea").fill('{"ok": ')
        expect(body.locator(".field-error")).to_contain_text("Not JSON yet")
        body.locator("textarea").fill("{{ payload }}")
        expect(body.locator(".field-error")).to_have_text("")
        page.locator("#save").click()
        expect(page.locator("#save-state")).to_contain_text("Saved at")

    automation.refresh_from_db()
    assert automation.flow["steps"][0]["body"] == "{{ payload }}"
