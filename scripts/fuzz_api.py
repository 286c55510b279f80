#!/usr/bin/env python3
"""Fuzz the whole API with schemathesis against its own OpenAPI schema (/api/schema/), as a project
owner, and fail on any 500. A separate CI step (the test suite stays fast):

    .venv/bin/python scripts/fuzz_api.py [--max-examples 25]

It migrates a fresh database (SQLite in a temporary directory unless DATABASE_URL is set), creates
an owner with a token and a project, serves the app with gunicorn on 127.0.0.1 and points
schemathesis at it, with `project_id` fixed to that project so requests get past the 404 of
foreign projects. Deliveries created while fuzzing are never sent (no worker runs, and private
targets are refused). It prints the number of requests and of 500s, counted from gunicorn's
access log, and exits non-zero on any 500 or schemathesis failure."""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict) -> tuple[str, str]:
    """Migrate, then an owner with a token and a project; returns (token, project id)."""
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        "from support.models import Project, ProjectUser, Role\n"
        "user = get_user_model().objects.create_user('fuzz-owner', 'fuzz@example.com', 'pw')\n"
        "project = Project.objects.create(name='Fuzz', created_by=user)\n"
        "ProjectUser.objects.create(project=project, user=user, email=user.email, role=Role.OWNER)\n"
        "print(Token.objects.create(user=user).key, project.pk)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    token, project_id = out.stdout.split()[-2:]
    return token, project_id


def seed_objects(base: str, token: str, project_id: str) -> dict[str, str]:
    """One object of each kind, created through the API, so that detail operations (GET, PUT, PATCH,
    DELETE .../{id}/) are fuzzed on real objects instead of only answering 404."""
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    root = f"{base}/api/projects/{project_id}"

    def create(path: str, body: dict) -> str:
        response = api.post(f"{root}/{path}/", json=body, timeout=20)
        response.raise_for_status()
        return response.json()["id"]

    ids = {
        "groups": create("groups", {"name": "Tier 1", "members": []}),
        "faq_kb": create("faq_kb", {"name": "Bot"}),
        "leads": create("leads", {"fullname": "Ann", "email": "ann@example.com"}),
        "events": create("events", {"name": "typing.start"}),
        # Not the owner's own membership: fuzzing it could demote the fuzzing user.
        "project_users": create("project_users", {"email": "agent@example.com", "role": "agent"}),
        "subscriptions": create("subscriptions", {"event": "request.create", "target": "https://hooks.example.com/x"}),
    }
    ids["departments"] = create("departments", {"name": "Sales", "routing": "pooled"})
    ids["faqs"] = create("faqs", {"id_faq_kb": ids["faq_kb"], "question": "Q?", "answer": "A."})
    ids["requests"] = create("requests", {"first_text": "Hello", "lead": ids["leads"]})
    ids["messages"] = create(f"requests/{ids['requests']}/messages", {"text": "Hi"})
    ids["automations"] = create("automations", {"name": "Echo", "flow": {"steps": []}})
    deliveries = api.get(f"{root}/deliveries/", timeout=20).json()["results"]
    if deliveries:
        ids["deliveries"] = deliveries[0]["id"]
    return ids


def schemathesis_config(project_id: str, ids: dict[str, str]) -> str:
    """`project_id` everywhere, and the seeded object's id on each resource's detail operations
    (TOML literal strings, so the regular expressions need no extra escaping)."""
    lines = ["[parameters]", f'"path.project_id" = "{project_id}"', ""]

    def operations(regex: str, **params: str) -> None:
        values = ", ".join(f'"path.{name}" = "{value}"' for name, value in {"project_id": project_id, **params}.items())
        lines.extend(["[[operations]]", f"include-path-regex = '{regex}'", f"parameters = {{ {values} }}", ""])

    messages = r"^/api/projects/\{project_id\}/requests/\{request_pk\}/messages/"
    for resource, pk in ids.items():
        if resource == "messages":
            operations(messages + r"\{id\}/$", request_pk=ids["requests"], id=pk)
        else:
            operations(rf"^/api/projects/\{{project_id\}}/{resource}/\{{id\}}/", id=pk)
    operations(messages + "$", request_pk=ids["requests"])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", 25)))
    parser.add_argument("--workers", default="2", help="schemathesis concurrency")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fuzz-api-"))
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'fuzz.sqlite3'}")
    env.update(
        DJANGO_SETTINGS_MODULE="tiledesk_hooks.settings",
        Q_BROKER="orm",
        Q_NAME="fuzz",
        HOOKS_ALLOW_PRIVATE_TARGETS="0",
        DJANGO_DEBUG="0",
        PATH=f"{BIN}:{env['PATH']}",
    )
    env.pop("Q_SYNC", None)
    token, project_id = seed(env)

    port = free_port()
    access_log = tmp / "access.log"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "tiledesk_hooks.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--access-logfile", str(access_log), "--error-logfile", str(tmp / "error.log"),
         "--access-logformat", '%(s)s %(m)s %(U)s'],
        cwd=REPO, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(base + "/api/schema/", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        config = tmp / "schemathesis.toml"
        config.write_text(schemathesis_config(project_id, seed_objects(base, token, project_id)))
        command = [
            str(BIN / "schemathesis"), "--config-file", str(config), "run", f"{base}/api/schema/",
            "--url", base,
            "--header", f"Authorization: Token {token}",
            "--checks", "not_a_server_error",
            "--max-examples", str(args.max_examples),
            "--workers", args.workers,
            "--phases", "examples,coverage,fuzzing",
            "--request-timeout", "20",
            "--suppress-health-check", "all",
            "--no-color",
        ]  # fmt: skip
        print("$", " ".join(command).replace(token, "<token>"), flush=True)
        # schemathesis closes on a pytest-style banner ("N warnings in Ns"); its report goes to a
        # file so that CI's log holds only real pytest results in that form.
        report = REPO / "test-artifacts" / "fuzz-schemathesis.log"
        report.parent.mkdir(parents=True, exist_ok=True)
        with report.open("w") as out:
            status = subprocess.run(command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        text = report.read_text()
        print(f"fuzz: schemathesis exited {status}; its report is in {report.relative_to(REPO)}")
        for line in text.splitlines():
            if re.search(r"generated, |Tested: |Seed: ", line):
                print("fuzz:", line.strip())
        if status:
            print(text[-8000:])
    finally:
        server.terminate()
        server.wait(20)

    # One line per request: split on newlines only (a fuzzed path may hold other line separators).
    lines = [line for line in access_log.read_text().split("\n") if line] if access_log.exists() else []
    errors = [line for line in lines if re.match(r"5\d\d ", line)]
    print(
        f"\nfuzz: {len(lines)} requests (max {args.max_examples} examples per operation), {len(errors)} server errors"
    )
    by_status = Counter(line.split(" ", 1)[0] for line in lines)
    print("fuzz: answers by status:", ", ".join(f"{code}: {n}" for code, n in sorted(by_status.items())))
    for line in sorted(set(errors)):
        print("  ", line)
    if errors and (tmp / "error.log").exists():
        print((tmp / "error.log").read_text()[-5000:])
    return 1 if errors or status else 0


if __name__ == "__main__":
    sys.exit(main())
