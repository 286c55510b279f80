"""Runs made by a signed-in member rather than by a caller of the webhook URLs: a replay of a
recorded run, and the studio's test call. Both skip the inbound checks (`auth`, `ip_allowlist`: the
member is authenticated already) and run the flow as it is now, to its end, in the API request.

A replay resends what the run kept of its call: method, query, content type, body (refused when the
body was truncated: the flow would see another call) and the headers whose values were kept (a
redacted value is not resent, so the flow sees those headers absent)."""

from __future__ import annotations

import json
from typing import Any

from .engine import Execution
from .inbound import InboundRefused, parse
from .models import Automation, Run
from .recording import REDACTED, Headers, recorded, redacted_headers
from .webhook import ended_without_response


def replay(original: Run, automation: Automation, mode: str) -> Run:
    """The new run (raises InboundRefused when the recorded call cannot be sent again)."""
    if original.body_truncated:
        raise InboundRefused(400, "This run's body was truncated when it was recorded; it cannot be replayed.")
    headers = Headers({name: value for name, value in (original.headers or {}).items() if value != REDACTED})
    run = Run(
        automation=automation,
        project_id=automation.project_id,
        mode=mode,
        method=original.method,
        query=original.query,
        headers=redacted_headers(headers),
        content_type=original.content_type,
        body=original.body,
        path=original.path,
        replay_of=original,
    )
    body = original.body.encode()
    inbound = parse(original.method, original.content_type, original.query or {}, headers, body, original.path)
    return execute(run, automation, inbound)


def test_call(automation: Automation, method: str, headers: dict[str, str], body: Any) -> Run:
    """A development run of `body` (JSON, or text when `headers` give a non-JSON Content-Type)."""
    headers = Headers({str(name).lower(): str(value) for name, value in headers.items()})
    content_type = headers.setdefault("content-type", "application/json")
    if body is None:
        raw = b""
    elif isinstance(body, str) and "json" not in content_type:
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    run = Run(
        automation=automation,
        project_id=automation.project_id,
        mode=Run.Mode.DEVELOPMENT,
        method=method,
        headers=redacted_headers(headers),
        content_type=content_type[:200],
        body=raw.decode(),
    )
    return execute(run, automation, parse(method, content_type, {}, headers, raw))


def execute(run: Run, automation: Automation, inbound) -> Run:
    """Run the flow to its end, recording the answer the caller would have had."""
    execution = Execution(run, automation, inbound)
    if execution.live:
        Run.objects.insert(run)
    answer = execution.next_response()
    if answer is None:
        ended_without_response(run)
    else:
        run.response = recorded(answer)
        execution.run_to_end()
    return run
