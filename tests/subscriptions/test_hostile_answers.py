"""Whatever a receiver answers is logged, and never makes the log show a credential: text the
database cannot store as it is (NUL, invalid UTF-8) is made storable first, one row the database
refuses does not keep the others of its group from being logged, and a secret or token echoed back
in any common encoding is redacted."""

import json
import re
from urllib.parse import quote

from werkzeug import Response

from subscriptions import tasks, transitions
from subscriptions.models import Attempt, Delivery, Subscription
from subscriptions.outcomes import record_outcomes
from subscriptions.sender import prepare, send_all
from tests.factories import pending_delivery, subscribed
from tests.reliability.hooks import emit

NUL_ANSWER = b"HTTP/1.1 200 OK\r\nX-Odd: a\x00b\r\nContent-Length: 6\r\n\r\nok\x00\xff!!"


def test_an_answer_with_nul_and_invalid_utf8_is_logged_and_the_delivery_succeeds(api, project, raw_receiver, on_commit):
    receiver = raw_receiver(lambda conn: conn.sendall(NUL_ANSWER))
    subscribed(api, project.pk, receiver.url, "event.emit")
    with on_commit():
        emit(api, project.pk)
    attempt = Attempt.objects.get()
    assert attempt.status_code == 200 and attempt.outcome == "success"
    assert attempt.response_body == "ok\ufffd\\xff!!"
    assert attempt.response_headers["X-Odd"] == "a\ufffdb"
    assert Delivery.objects.get().status == "success"
    assert receiver.requests == 1


def test_a_healthy_delivery_beside_a_nul_answer_is_logged_once_and_not_sent_again(
    api, project, raw_receiver, httpserver, on_commit
):
    receiver = raw_receiver(lambda conn: conn.sendall(NUL_ANSWER))
    httpserver.expect_request("/healthy").respond_with_json({})
    subscribed(api, project.pk, receiver.url, "event.emit")
    subscribed(api, project.pk, httpserver.url_for("/healthy"), "event.emit")
    with on_commit():  # one event, two deliveries: one group in the worker
        emit(api, project.pk)
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["success", "success"]
    assert Attempt.objects.count() == 2
    tasks.retry_pending(grace_s=0)
    assert len(httpserver.log) == 1 and receiver.requests == 1


def test_a_row_the_database_refuses_does_not_keep_the_rest_of_its_group_from_being_logged(
    transactional_db, api, project, httpserver
):
    """The subscription of one delivery is deleted while its request is out: its attempt row can
    no longer be written, and the other delivery of the group is logged all the same."""
    httpserver.expect_request("/hook").respond_with_json({})
    gone, kept = (subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit") for _ in range(2))
    deliveries = [pending_delivery(Subscription.objects.get(pk=s["id"])) for s in (gone, kept)]
    claimed = transitions.claim([d.pk for d in deliveries])
    assert len(claimed) == 2
    sent = [outgoing for group in send_all([prepare(d) for d in claimed]) for outgoing in group]
    Subscription.objects.filter(pk=gone["id"]).delete()
    record_outcomes(sent)
    assert list(Attempt.objects.values_list("subscription_id", flat=True)) == [kept["id"]]
    assert Delivery.objects.get().status == "success"


SECRET = "whsec_Ab+cD/eF=gH+iJ/kL=mN+oP/qR=sT+uV/wX=yZ0="
LOWER_HEX = re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quote(SECRET, safe=""))


def test_a_secret_or_token_echoed_url_encoded_or_json_escaped_is_redacted_in_the_logs(
    api, project, httpserver, on_commit
):
    def echo(request):
        token = json.loads(request.get_data())["token"]
        body = {
            "query": f"secret={quote(SECRET, safe='')}&token={quote(token)}",
            "lower": LOWER_HEX,
            "plus": SECRET.replace("/", "\\/"),
            "unicode": "".join(f"\\u{ord(c):04x}" for c in SECRET),
            "token": token,
        }
        text = json.dumps(body).replace("\\\\", "\\")  # the escapes as a receiver would write them
        return Response(text, headers={"X-Echo": quote(SECRET, safe=""), "X-Token": token})

    httpserver.expect_request("/echo").respond_with_handler(echo)
    subscription = subscribed(api, project.pk, httpserver.url_for("/echo"), "event.emit")
    Subscription.objects.filter(pk=subscription["id"]).update(secret=SECRET)
    with on_commit():
        emit(api, project.pk)
    logged = api.get(f"/api/projects/{project.pk}/subscriptions/logs/").content.decode()
    token = json.loads(received_body(httpserver))["token"]
    attempt = Attempt.objects.get()
    for form in (SECRET, quote(SECRET, safe=""), LOWER_HEX, token, "\\u0077\\u0068"):
        assert form not in logged and form not in attempt.response_body
    assert attempt.response_headers["X-Echo"] == attempt.response_headers["X-Token"] == "[redacted]"
    assert attempt.response_body.count("[redacted]") == 6


def received_body(httpserver) -> bytes:
    return httpserver.log[-1][0].get_data()
