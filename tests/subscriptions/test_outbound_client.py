"""The hardened client sends on urllib3 (what requests sends with) and keeps requests' side of the
contract: its header checks and its exception types; on the wire, the caller's headers as given,
gzip answers decoded, and connections kept alive between requests to one target."""

import gzip

import pytest
import requests

from subscriptions import outbound
from tests.reliability.hooks import Receiver


def fetch(url: str, headers: dict | None = None, body: bytes | None = b"{}", read_limit: int = 65536):
    return outbound.fetch("POST", url, headers=headers or {}, body=body, timeout_s=5, read_limit=read_limit)


@pytest.fixture
def keep_alive_receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.down()


def client_ports(receiver: Receiver) -> list[int]:
    return [receipt.client_port for receipt in receiver.receipts]


def test_requests_to_one_target_reuse_one_connection(keep_alive_receiver):
    answers = [fetch(keep_alive_receiver.url) for _ in range(3)]
    assert [(a.status_code, a.body) for a in answers] == [(200, b"{}")] * 3
    assert len(set(client_ports(keep_alive_receiver))) == 1


def test_an_answer_cut_at_the_read_limit_does_not_leave_its_connection_for_the_next_request(keep_alive_receiver):
    assert fetch(keep_alive_receiver.url, read_limit=1).body == b"{"
    assert fetch(keep_alive_receiver.url).body == b"{}"
    first, second = client_ports(keep_alive_receiver)
    assert first != second


def test_the_callers_headers_are_sent_as_given_whatever_their_case(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("")
    fetch(httpserver.url_for("/hook"), headers={"user-agent": "tiledesk-webhooks/1.0", "X-Hook-Id": "d1"})
    request = httpserver.log[0][0]
    assert request.headers.getlist("User-Agent") == ["tiledesk-webhooks/1.0"]
    assert request.headers["X-Hook-Id"] == "d1"
    assert request.headers["Content-Length"] == "2" and request.get_data() == b"{}"


def test_a_post_without_a_body_says_its_length_is_zero(httpserver):
    httpserver.expect_request("/hook").respond_with_data("")
    fetch(httpserver.url_for("/hook"), body=None)
    assert httpserver.log[0][0].headers["Content-Length"] == "0"


def test_a_gzip_answer_is_read_decoded(httpserver):
    httpserver.expect_request("/hook").respond_with_data(
        gzip.compress(b'{"agent": "a1"}'), headers={"Content-Encoding": "gzip"}, content_type="application/json"
    )
    assert fetch(httpserver.url_for("/hook")).body == b'{"agent": "a1"}'


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(httpserver):
    with pytest.raises(requests.exceptions.InvalidHeader):
        fetch(httpserver.url_for("/hook"), headers={"X-Injected": "a\r\nX-Evil: 1"})
    assert httpserver.log == []


def test_a_refused_connection_is_a_requests_connection_error():
    with pytest.raises(requests.ConnectionError) as raised:
        fetch("http://127.0.0.1:9/hook")
    assert not isinstance(raised.value, requests.Timeout)


def test_a_url_of_another_scheme_is_a_requests_error():
    with pytest.raises(requests.exceptions.InvalidSchema):
        fetch("ftp://127.0.0.1/hook")
