"""The part of bench/peers.py that runs inside one system's own virtualenv and Django project: it
sets up the hooks, saves models as API calls would (each save its own transaction) and measures
what a save costs. It prints one JSON line; bench/peers.py runs it, never a person.

Systems (`--system`):
- `self`: this project; saving a `support.Lead` publishes `lead.create` to the project's
  subscriptions (this virtualenv, the benchmark database of bench/harness.py);
- `django-webhook`, `django-rest-hooks`: the Django project bench/peers.py generated; saving its
  `crm.Lead` fires the library's hooks through Celery.
Every saved lead's name is a fresh `bmk<hex>` token, which bench/receiver.py (`--key mark`) finds
in whatever body each library sends. Only the standard library and Django are imported at the top:
the same file runs on Django 3.2 and 5.2.

Commands: `setup TARGET...` (every hook removed, then one hook per target on the "loud" account;
the "quiet" account has none), `reset` (the saved rows, outbox and logs emptied; hooks kept),
`publish` (prints {token: [start of its transaction, commit time]}), `cost` (prints the save
latencies with and without hooks)."""

import argparse
import json
import multiprocessing
import secrets
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
LEAD_EMAIL = "customer@example.com"
LEAD_ATTRIBUTES = {"plan": "pro", "seats": 12, "source": "widget"}


def new_mark() -> str:
    return f"bmk{secrets.token_hex(8)}"


class ThisProject:
    def setup_django(self) -> None:
        sys.path.insert(0, str(BENCH))
        import harness

        harness.setup_django()

    def setup(self, targets: list[str]) -> None:
        import harness

        harness.reset_state()
        loud, _ = harness.make_project("peers")
        harness.make_project("peers-quiet")
        for target in targets:
            harness.subscribe(loud, target, event="lead.create")

    def reset(self) -> None:
        import harness
        from django.db import connection

        harness.clear_outbox()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE support_lead CASCADE")

    def saver(self, quiet: bool):
        from support.models import Lead, Project

        project = Project.objects.get(name="peers-quiet" if quiet else "peers")

        def save(mark: str) -> None:
            Lead.objects.create(project=project, fullname=mark, email=LEAD_EMAIL, attributes=LEAD_ATTRIBUTES)

        return save


class GeneratedProject:
    """The project bench/peers.py wrote: `crm.Lead` (and `crm.Prospect`, the same fields)."""

    tables = "crm_lead, crm_prospect"

    def setup_django(self) -> None:
        import django

        django.setup()

    def reset(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {self.tables}")

    def owner(self, username: str):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get_or_create(username=username)[0]

    def model(self, quiet: bool):
        from crm.models import Lead

        return Lead

    def saver(self, quiet: bool):
        model, user = self.model(quiet), self.owner("quiet" if quiet else "owner")

        def save(mark: str) -> None:
            model.objects.create(user=user, fullname=mark, email=LEAD_EMAIL, attributes=LEAD_ATTRIBUTES)

        return save


class DjangoWebhook(GeneratedProject):
    """Webhooks are per topic (`crm.Lead/create`), for every row of the model: the quiet saves are
    of `crm.Prospect`, whose topic has no webhook. Each webhook has a secret, so requests are signed."""

    tables = "crm_lead, crm_prospect, django_webhook_webhookevent"

    def setup(self, targets: list[str]) -> None:
        from django_webhook.models import Webhook, WebhookSecret, WebhookTopic, populate_topics_from_settings

        Webhook.objects.all().delete()
        populate_topics_from_settings()
        topic = WebhookTopic.objects.get(name="crm.Lead/create")
        for target in targets:
            webhook = Webhook.objects.create(url=target)
            webhook.topics.set([topic])
            WebhookSecret.objects.create(webhook=webhook, token=secrets.token_hex(16))

    def model(self, quiet: bool):
        from crm.models import Lead, Prospect

        return Prospect if quiet else Lead


class DjangoRestHooks(GeneratedProject):
    """Hooks belong to a user and an event (`lead.created` = `crm.Lead.created`); a lead fires its
    user's hooks. The quiet saves are leads of a user without hooks."""

    def setup(self, targets: list[str]) -> None:
        from rest_hooks.models import Hook

        Hook.objects.all().delete()
        owner = self.owner("owner")
        self.owner("quiet")
        for target in targets:
            Hook.objects.create(user=owner, event="lead.created", target=target)


SYSTEMS = {"self": ThisProject, "django-webhook": DjangoWebhook, "django-rest-hooks": DjangoRestHooks}


def timed_save(save, mark: str) -> tuple[float, float, float]:
    """One API call's transaction: (seconds the save took, commit included; the wall-clock time it
    began; the commit time). The first on-commit callback takes the commit time, before any the
    system registered runs."""
    from django.db import transaction

    committed: list[float] = []
    began, started = time.time(), time.perf_counter()
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        save(mark)
    return time.perf_counter() - started, began, committed[0]


def publish(system, events: int, publishers: int, rate: float, quiet: bool) -> dict[str, float]:
    """Saves from `publishers` forked processes, as fast as they can or at `rate` saves/s in all on
    an absolute schedule (save k is due at start + k / rate). Returns {token: [began, committed]}."""
    from django.db import connections

    context = multiprocessing.get_context("fork")
    connections.close_all()
    start = time.time() + 0.3
    children = []
    for i in range(publishers):
        receiving, sending = context.Pipe(duplex=False)
        indexes = list(range(i, events, publishers))
        process = context.Process(target=_publisher, args=(sending, system, indexes, start, rate, quiet))
        process.start()
        sending.close()
        children.append((process, receiving))
    committed: dict[str, list[float]] = {}
    for process, receiving in children:
        committed.update(receiving.recv())
        process.join()
    return committed


def _publisher(results, system, indexes: list[int], start: float, rate: float, quiet: bool) -> None:
    from django.db import connections

    committed: dict[str, list[float]] = {}
    try:
        save = system.saver(quiet)
        for k in indexes:
            if rate and (pause := start + k / rate - time.time()) > 0:
                time.sleep(pause)
            mark = new_mark()
            committed[mark] = list(timed_save(save, mark)[1:])
    finally:
        connections.close_all()
        results.send(committed)


def cost(system, saves: int, block: int) -> dict[str, list[float]]:
    """Save latencies (ms) with the hooks and without, alternating blocks of `block` saves so that a
    busy moment of the machine hits both alike; no worker runs."""
    savers = {"hooks": system.saver(False), "none": system.saver(True)}
    for save in savers.values():
        for _ in range(10):
            timed_save(save, new_mark())
    samples: dict[str, list[float]] = {"hooks": [], "none": []}
    while min(len(v) for v in samples.values()) < saves:
        for case, save in savers.items():
            for _ in range(block):
                samples[case].append(round(timed_save(save, new_mark())[0] * 1000, 3))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("command", choices=("setup", "reset", "publish", "cost"))
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--events", type=int, default=1)
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0, help="saves/s in all; 0: as fast as they can")
    parser.add_argument("--quiet", action="store_true", help="save on the account without hooks")
    parser.add_argument("--saves", type=int, default=100)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    system = SYSTEMS[args.system]()
    system.setup_django()
    result: object = {}
    if args.command == "setup":
        system.setup(args.targets)
    elif args.command == "reset":
        system.reset()
    elif args.command == "publish":
        result = publish(system, args.events, args.publishers, args.rate, args.quiet)
    else:
        result = cost(system, args.saves, args.block)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
