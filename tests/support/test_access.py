"""Access control across the whole API, table-driven from the URL resolver itself, so an endpoint
added later is covered without editing this file. Per the contract (API.md, Conventions):
anonymous callers get 401, members of another project 404 for anything in this one, and agents
403 where only owners and admins may act (subscriptions, deliveries, logs; project settings)."""

import re
from dataclasses import dataclass

import pytest
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from support.models import Message, Project, ProjectUser, Request, Role
from tests.conftest import client_for
from tests.factories import subscribed
from tests.reliability.hooks import emit

PUBLIC = {"/api/events/"}  # the event catalog needs no credentials
# The API documentation (OpenAPI schema, Swagger UI, ReDoc) is public too: it shows no data.
PUBLIC |= {"/api/schema/", "/api/docs/", "/api/redoc/"}
# Where the contract says "only owners and admins": subscriptions (and their logs) and deliveries.
MANAGERS_ONLY = re.compile(r"^/api/projects/\{project_id\}/(subscriptions|deliveries)/")
# Changing or deleting the project itself is not an agent's business either.
PROJECT_DETAIL = "/api/projects/{pk}/"
UNKNOWN_ID = "ffffffffffffffffffffffff"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    template: str  # e.g. /api/projects/{project_id}/subscriptions/{pk}/
    methods: tuple[str, ...]
    view: type | None

    def __str__(self) -> str:
        return self.template


def _pattern_text(pattern) -> str:
    text = str(pattern)
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)  # regex groups (DRF routers)
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)  # path converters
    return text.replace("^", "").replace("$", "")


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        text = prefix + _pattern_text(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, text)
        elif isinstance(pattern, URLPattern):
            yield "/" + text, pattern.callback


def api_routes() -> list[Route]:
    """Every URL pattern under /api/, with the HTTP methods its view answers (format-suffix twins
    of the same views are left out)."""
    routes = []
    for template, callback in _walk(get_resolver().url_patterns):
        if not template.startswith("/api/") or "{format}" in template:
            continue
        assert not re.search(r"[\\()\[\]?*+]", template), f"cannot build a URL from the pattern {template}"
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if actions := getattr(callback, "actions", None):
            methods = tuple(m for m in METHODS if m in actions)
        elif view is not None:
            methods = tuple(m for m in METHODS if hasattr(view, m))
        else:
            methods = ("get",)
        routes.append(Route(template, methods, view))
    return routes


ROUTES = api_routes()


def test_the_table_covers_the_api():
    templates = {route.template for route in ROUTES}
    for expected in (
        "/api/projects/{project_id}/subscriptions/{pk}/rotate_secret/",
        "/api/projects/{project_id}/subscriptions/logs/",
        "/api/projects/{project_id}/deliveries/{pk}/redeliver/",
        "/api/projects/{project_id}/requests/{request_pk}/messages/",
        "/api/projects/{pk}/",
    ):
        assert expected in templates
    assert len(ROUTES) >= 25


@pytest.fixture
def world(api, project, add_member, make_user, on_commit):
    """One of everything in `project`, made through the API by its owner, and ids to fill in."""
    add_member("admin1", Role.ADMIN)
    pid = project.pk

    def made(path: str, body: dict) -> str:
        response = api.post(f"/api/projects/{pid}/{path}", body, format="json")
        assert response.status_code == 201, (path, response.content)
        return response.json()["id"]

    made("groups/", {"name": "Front", "members": []})
    bot = made("faq_kb/", {"name": "Bot"})
    made("faqs/", {"id_faq_kb": bot, "question": "q?", "answer": "a"})
    made("departments/", {"name": "Sales", "routing": "pooled"})
    made("leads/", {"fullname": "Lea"})
    subscribed(api, pid, "http://127.0.0.1:9/hook", event="message.create")  # port 9: refused at once
    with on_commit():
        conversation = made("requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}})
        made(f"requests/{conversation}/messages/", {"text": "hello"})
    with on_commit():
        emit(api, pid)
    assert Message.objects.filter(project=project).exists()
    return {"project_id": pid, "request_pk": Request.objects.get(project=project).pk}


def url_for(route: Route, ids: dict) -> str:
    """The route with real ids of `ids["project_id"]`'s objects (an unknown id where none fits)."""

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name in ids:
            return str(ids[name])
        if name == "pk":
            model = getattr(getattr(route.view, "queryset", None), "model", None) or getattr(
                getattr(getattr(route.view, "serializer_class", None), "Meta", None), "model", None
            )
            if model is Project:
                return ids["project_id"]
            if model is not None and _has_project(model):
                found = model.objects.filter(project_id=ids["project_id"]).order_by("pk").first()
                if found is not None:
                    return str(found.pk)
        return UNKNOWN_ID

    return re.sub(r"\{(\w+)\}", fill, route.template)


def _has_project(model) -> bool:
    return any(isinstance(f, models.ForeignKey) and f.name == "project" for f in model._meta.get_fields())


def call(client: APIClient, method: str, url: str):
    return getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)


def in_this_project(route: Route) -> bool:
    return route.template.startswith("/api/projects/{")


def test_anonymous_callers_get_401_everywhere_but_the_catalog(world):
    anonymous = APIClient()
    wrong = []
    for route in ROUTES:
        for method in route.methods:
            url = url_for(route, world)
            expected = 200 if route.template in PUBLIC and method == "get" else 401
            if (status := call(anonymous, method, url).status_code) != expected:
                wrong.append((method.upper(), url, status, expected))
    assert wrong == []


def test_a_wrong_token_is_401_too(world):
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    wrong = []
    for route in ROUTES:
        if route.template not in PUBLIC:
            for method in route.methods:
                if (status := call(forged, method, url_for(route, world)).status_code) != 401:
                    wrong.append((method.upper(), route.template, status))
    assert wrong == []


def test_members_of_another_project_get_404_for_everything_in_this_one(world, make_user):
    outsider = make_user("outsider")
    theirs = Project.objects.create(name="Elsewhere", created_by=outsider)
    ProjectUser.objects.create(project=theirs, user=outsider, email=outsider.email, role=Role.OWNER)
    client = client_for(outsider)
    wrong = []
    for route in ROUTES:
        if in_this_project(route):
            for method in route.methods:
                if (status := call(client, method, url_for(route, world)).status_code) != 404:
                    wrong.append((method.upper(), route.template, status))
    assert wrong == []
    assert Project.objects.filter(pk=world["project_id"]).exists()


def test_agents_get_403_where_only_owners_and_admins_may_act(world, add_member):
    agent = client_for(add_member("agent7", Role.AGENT))
    checked, wrong = 0, []
    for route in ROUTES:
        for method in route.methods:
            if MANAGERS_ONLY.match(route.template) or (route.template == PROJECT_DETAIL and method != "get"):
                checked += 1
                if (status := call(agent, method, url_for(route, world)).status_code) != 403:
                    wrong.append((method.upper(), route.template, status))
    assert wrong == [] and checked >= 10


# The support domain (and the project itself), which the contract opens to every teammate.
TEAM_READABLE = re.compile(
    r"^/api/projects/(\{pk\}/$|\{project_id\}/(project_users|groups|departments|faq_kb|faqs|leads|requests|events)/)"
)


def test_agents_may_read_the_support_domain_of_their_project(world, add_member):
    agent = client_for(add_member("agent8", Role.AGENT))
    checked, wrong = 0, []
    for route in ROUTES:
        if "get" not in route.methods or not in_this_project(route) or MANAGERS_ONLY.match(route.template):
            continue
        url = url_for(route, world)
        status = agent.get(url).status_code
        if TEAM_READABLE.match(route.template):
            checked += 1
            if UNKNOWN_ID not in url and status != 200:
                wrong.append((route.template, status))
        elif status in (401, 500):  # routes the contract says nothing about: a member is never 401 nor a 500
            wrong.append((route.template, status))
    assert wrong == [] and checked >= 15


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_read_every_route(world, add_member, owner, role):
    """The positive control: the same URLs answer 200 to those allowed, so the 401/403/404 above
    are about who is asking, not about wrong URLs."""
    client = client_for(owner if role == Role.OWNER else add_member("admin2", Role.ADMIN))
    read, wrong = 0, []
    for route in ROUTES:
        if "get" in route.methods and UNKNOWN_ID not in (url := url_for(route, world)):
            read += 1
            if (status := client.get(url).status_code) != 200:
                wrong.append((route.template, status))
    assert wrong == [] and read >= 20


# What a subscription's envelope token may do (API.md, "Tiledesk's own paths"): read requests,
# messages, leads and bots; post messages; close requests; set participants; change a lead; emit
# events. Everything else in its project is 403.
SUBSCRIPTION_MAY = {
    ("get", "/api/projects/{project_id}/requests/"),
    ("get", "/api/projects/{project_id}/requests/{pk}/"),
    ("post", "/api/projects/{project_id}/requests/{pk}/close/"),
    ("put", "/api/projects/{project_id}/requests/{pk}/participants/"),
    ("get", "/api/projects/{project_id}/requests/{request_pk}/messages/"),
    ("post", "/api/projects/{project_id}/requests/{request_pk}/messages/"),
    ("get", "/api/projects/{project_id}/requests/{request_pk}/messages/{pk}/"),
    ("get", "/api/projects/{project_id}/leads/"),
    ("get", "/api/projects/{project_id}/leads/{pk}/"),
    ("put", "/api/projects/{project_id}/leads/{pk}/"),
    ("patch", "/api/projects/{project_id}/leads/{pk}/"),
    ("get", "/api/projects/{project_id}/faq_kb/"),
    ("get", "/api/projects/{project_id}/faq_kb/{pk}/"),
    ("post", "/api/projects/{project_id}/events/"),
}


def subscription_client(project_id: str) -> APIClient:
    from subscriptions.envelope import hook_representation
    from subscriptions.envelope_token import encode_envelope_token
    from subscriptions.models import Subscription

    subscription = Subscription.objects.create(
        project_id=project_id, event="lead.create", target="https://hooks.example.com/x", secret="whsec_" + "k" * 44
    )
    client = APIClient()
    token = encode_envelope_token(subscription, hook_representation(subscription))
    client.credentials(HTTP_AUTHORIZATION=f"JWT {token}")
    return client


def test_a_subscriptions_token_may_do_a_receivers_actions_and_gets_403_for_the_rest(world):
    client = subscription_client(world["project_id"])
    allowed, wrong = 0, []
    for route in ROUTES:
        for method in route.methods:
            if not in_this_project(route) and route.template != "/api/projects/":
                continue
            status = call(client, method, url_for(route, world)).status_code
            if (method, route.template) in SUBSCRIPTION_MAY:
                allowed += 1
                if status in (401, 403, 500):  # 400 for the empty bodies sent here is fine
                    wrong.append((method.upper(), route.template, status, "allowed"))
            elif status != 403:
                wrong.append((method.upper(), route.template, status, "expected 403"))
    assert wrong == [] and allowed == len(SUBSCRIPTION_MAY)
    assert Project.objects.filter(pk=world["project_id"], deleted_at__isnull=True).exists()


def test_a_subscriptions_token_gets_404_for_everything_in_another_project(world, make_user):
    outsider = make_user("outsider2")
    theirs = Project.objects.create(name="Elsewhere", created_by=outsider)
    ProjectUser.objects.create(project=theirs, user=outsider, email=outsider.email, role=Role.OWNER)
    client = subscription_client(theirs.pk)
    wrong = []
    for route in ROUTES:
        if in_this_project(route):
            for method in route.methods:
                if (status := call(client, method, url_for(route, world)).status_code) != 404:
                    wrong.append((method.upper(), route.template, status))
    assert wrong == []
