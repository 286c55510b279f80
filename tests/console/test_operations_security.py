"""What the unauthenticated operations endpoints must never do: load anything another local user
could have planted, or show every tenant's event names to anyone."""

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from django.core.cache.backends.filebased import FileBasedCache
from django_q.conf import Conf

from tests.conftest import REPO


class _Planted:
    """A pickle that, when loaded, leaves a mark: what an attacker's code would do instead."""

    def __init__(self, mark: Path):
        self.mark = mark

    def __reduce__(self):
        return (Path.touch, (self.mark,))


def test_healthz_loads_no_pickle_planted_in_the_shared_temp_dir(client, db, tmp_path):
    # Where a file-based status cache of this checkout would live: a predictable, world-writable path.
    location = os.path.join(
        tempfile.gettempdir(), "tiledesk-hooks-qstat-" + hashlib.sha1(str(REPO).encode()).hexdigest()[:12]
    )
    os.makedirs(location, exist_ok=True)
    planted = FileBasedCache(location, {})._key_to_file(Conf.Q_STAT)
    mark = tmp_path / "code-ran"
    with open(planted, "wb") as handle:
        pickle.dump(_Planted(mark), handle)
    try:
        client.get("/healthz")
        client.get("/metrics")
    finally:
        os.remove(planted)

    assert not mark.exists()


def test_the_worker_heartbeat_is_kept_in_the_database(settings):
    from django.core.cache import caches

    status_cache = caches[Conf.CACHE]

    assert type(status_cache).__module__ == "django.core.cache.backends.db"


def test_metrics_are_open_while_no_token_is_configured(client, db):
    assert client.get("/metrics").status_code == 200


def test_metrics_with_a_token_configured_refuse_a_scraper_without_it(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-it"})

    assert missing.status_code == wrong.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"hooks_" not in missing.content + wrong.content


def test_metrics_with_a_token_configured_answer_the_scraper_that_sends_it(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})

    assert response.status_code == 200
    assert b"hooks_pending_deliveries" in response.content
