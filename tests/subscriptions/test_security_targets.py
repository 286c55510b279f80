"""Target safety: the SSRF guard at save time (400 on `target`) and at send time (what the host
resolves to then), refusals logged without saying where a host leads, and redirects never followed."""

import socket

import pytest

from subscriptions import outbound
from subscriptions.models import Attempt, Delivery
from subscriptions.targets import TargetRefused
from tests.factories import subscribed
from tests.reliability.hooks import emit

FORBIDDEN_AT_SAVE = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:7f00:1]/hook", "loopback"),
    ("http://localhost:8000/hook", "loopback"),
    ("http://api.localhost/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://[fc00::1]/hook", "private"),
    ("http://[::ffff:10.0.0.1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud-metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud-metadata"),
    ("http://169.254.10.1/hook", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
]


@pytest.fixture
def no_private_targets(settings):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False


@pytest.mark.parametrize("target,reason", FORBIDDEN_AT_SAVE)
def test_a_forbidden_literal_address_is_400_on_target(api, project, no_private_targets, target, reason):
    response = api.post(
        f"/api/projects/{project.pk}/subscriptions/", {"event": "event.emit", "target": target}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["target"]
    assert reason in response.json()["target"][0].lower()


def test_changing_the_target_to_a_private_address_is_400(api, project, no_private_targets):
    hook = subscribed(api, project.pk, "https://hooks.example.com/in", "event.emit")
    response = api.patch(
        f"/api/projects/{project.pk}/subscriptions/{hook['id']}/", {"target": "http://10.0.0.7/"}, format="json"
    )
    assert response.status_code == 400 and "target" in response.json()


def test_a_public_host_name_is_accepted_at_save(api, project, no_private_targets):
    assert (
        subscribed(api, project.pk, "https://hooks.example.com/in", "event.emit")["target"]
        == "https://hooks.example.com/in"
    )


def test_private_targets_are_allowed_when_the_deployment_says_so(api, project, settings):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = True
    assert subscribed(api, project.pk, "http://10.1.2.3/hook", "event.emit")["target"] == "http://10.1.2.3/hook"


# Hosts that pass the save-time check or were saved while private targets were allowed: the
# send-time check judges what they resolve to. Each points at the port of a live receiver on
# 127.0.0.1, so a breach of the guard would show up as a request received.
FORBIDDEN_AT_SEND = [
    ("127.0.0.1", "loopback"),
    ("localhost", "loopback"),
    ("127.1", "loopback"),  # shorthand: not a literal address for the parser, resolves to 127.0.0.1
    ("2130706433", "loopback"),  # 127.0.0.1 as one integer
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("0.0.0.0", "unspecified"),  # connecting there reaches this machine
    ("[::]", "unspecified"),
    ("10.0.0.1", "private"),
    ("[fd00::1]", "private"),
    ("169.254.169.254", "cloud-metadata"),
    ("169.254.1.1", "link-local"),
    ("[fe80::1]", "link-local"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
]


@pytest.mark.parametrize("host,kind", FORBIDDEN_AT_SEND)
def test_send_time_refusal_is_logged_without_saying_where_the_host_leads(
    api, project, httpserver, on_commit, settings, host, kind
):
    httpserver.expect_request("/hook").respond_with_json({})
    subscribed(api, project.pk, f"http://{host}:{httpserver.port}/hook", "event.emit")  # saved while allowed
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    settings.HOOKS_RETRY_DELAYS_S = [60.0]  # the retry falls due after the worker has stopped draining
    with on_commit():
        emit(api, project.pk)
    assert httpserver.log == []
    attempt = Attempt.objects.get()
    assert attempt.outcome == "failed" and attempt.status_code is None
    hostname = host.strip("[]")
    assert attempt.error == f"refused: {hostname} resolves to a private address, which targets may not use"
    logged = api.get(f"/api/projects/{project.pk}/subscriptions/logs/").json()["results"]
    assert logged[0]["error"] == attempt.error
    assert Delivery.objects.get().status == "pending"  # refused now, tried again later (DNS can change)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(api, project, httpserver, on_commit, status):
    httpserver.expect_request("/hook").respond_with_data("", status=status, headers={"Location": "/elsewhere"})
    httpserver.expect_request("/elsewhere").respond_with_json({})
    subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")
    with on_commit():
        emit(api, project.pk)
    assert [request.path for request, _ in httpserver.log] == ["/hook"]
    attempt = Attempt.objects.get()
    assert attempt.outcome == "failed" and attempt.status_code == status
    assert "not followed" in attempt.error
    assert Delivery.objects.get().status == "pending"


def test_the_connection_itself_refuses_a_forbidden_peer(httpserver, settings, monkeypatch):
    """Even a request that skipped the resolve-time check cannot talk to a forbidden address."""
    httpserver.expect_request("/hook").respond_with_json({})
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    monkeypatch.setattr(outbound, "check_at_send_time", lambda url: None)
    with pytest.raises(TargetRefused, match="^refused: localhost resolves to a private address"):
        outbound.fetch("POST", httpserver.url_for("/hook"), headers={}, body=b"{}", timeout_s=2, read_limit=1024)
    assert httpserver.log == []


def test_dns_rebinding_between_check_and_connect_is_refused(api, project, httpserver, on_commit, settings, monkeypatch):
    """A hostile DNS server (played here by a stand-in resolver for one made-up name) answers a
    public address to the check and 127.0.0.1 to the connection that follows."""
    httpserver.expect_request("/hook").respond_with_json({})
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def hostile_dns(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", hostile_dns)
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    subscribed(api, project.pk, f"http://rebind.test:{httpserver.port}/hook", "event.emit")
    with on_commit():
        emit(api, project.pk)
    assert httpserver.log == []
    error = Attempt.objects.get().error
    assert error == "refused: rebind.test resolves to a private address, which targets may not use"
