"""The three systems bench/peers.py compares: this project, and each peer (django-webhook + Celery,
django-rest-hooks + Celery) in its own virtualenv (bench/.peers/, cached by the hash of its pinned
requirements, bench/peers-<name>.txt) with a minimal Django project written here, driven through
bench/peer_agent.py inside that virtualenv."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import harness

PEERS_DIR = harness.BENCH / ".peers"
AGENT = harness.BENCH / "peer_agent.py"
SYSTEMS = ("self", "django-webhook", "django-rest-hooks")
LABELS = {"self": "this project", "django-webhook": "django-webhook", "django-rest-hooks": "django-rest-hooks"}


# --- the systems ---------------------------------------------------------------------------------
class System:
    """One system under test: how to run its agent and start its workers."""

    name = ""
    python = sys.executable
    cwd = harness.ROOT

    def env(self) -> dict[str, str]:
        return {**os.environ}

    def prepare(self) -> None:
        raise NotImplementedError

    def start_workers(self, workers: int, name: str) -> harness.Child:
        raise NotImplementedError

    def versions(self) -> dict:
        return {}

    def agent(self, command: str, *targets: str, background: bool = False, **options):
        argv = [self.python, str(AGENT), "--system", self.name, command, *targets]
        for key, value in options.items():
            if value is True:
                argv.append(f"--{key}")
            elif value not in (None, False):
                argv += [f"--{key}", str(value)]
        process = subprocess.Popen(argv, cwd=self.cwd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
        return process if background else agent_result(process, command)


def agent_result(process: subprocess.Popen, command: str):
    """The agent's JSON; a publish's {token: [began, committed]} becomes a `Saves`."""
    out, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"peer_agent {command} failed ({process.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return Saves(result) if command == "publish" else result


class Saves(dict):
    """{token: start of its save's transaction}, with `.committed` {token: commit time}."""

    def __init__(self, times: dict[str, list[float]]):
        super().__init__((mark, began) for mark, (began, _) in times.items())
        self.committed = {mark: committed for mark, (_, committed) in times.items()}


class ThisProject(System):
    name = "self"

    def env(self) -> dict[str, str]:
        return harness.app_env()

    def prepare(self) -> None:
        harness.ensure_database()

    def start_workers(self, workers: int, name: str) -> harness.Child:
        return harness.start_cluster(workers, name=f"peers-self-{name}")

    def versions(self) -> dict:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT, capture_output=True, text=True
        )
        return {"commit": commit.stdout.strip()}


class Peer(System):
    """A library in its own virtualenv, with the Django project this script writes for it."""

    app = ""
    discover = ""  # the apps whose tasks Celery looks for (all installed apps by default)

    def __init__(self):
        self.requirements = harness.BENCH / f"peers-{self.name}.txt"
        digest = hashlib.sha256(self.requirements.read_bytes() + sys.version.encode()).hexdigest()[:12]
        self.venv = PEERS_DIR / "venvs" / f"{self.name}-{digest}"
        self.python = str(self.venv / "bin" / "python")
        self.cwd = PEERS_DIR / "projects" / self.name
        self.db_name = f"{harness.DB_NAME}_{self.name.replace('-', '_')}"
        self.queue = f"{harness.Q_NAME}_{self.name.replace('-', '_')}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV")}
        env.update(
            DJANGO_SETTINGS_MODULE="peerproj.settings",
            PYTHONPATH=str(self.cwd),
            PEER_DATABASE_URL=f"{harness.PG_SERVER}/{self.db_name}",
            PEER_BROKER_URL=harness.REDIS_URL,
            PEER_QUEUE=self.queue,
            PYTHONUNBUFFERED="1",
        )
        return env

    def prepare(self) -> None:
        self.make_venv()
        self.write_project()
        import psycopg

        with psycopg.connect(f"{harness.PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        harness.LOGS.mkdir(parents=True, exist_ok=True)
        with open(harness.LOGS / f"peers-{self.name}-prepare.log", "w") as log:
            for argv in (["makemigrations", "crm", "-v", "0"], ["migrate", "--noinput", "-v", "0"]):
                subprocess.run([self.python, "manage.py", *argv], cwd=self.cwd, env=self.env(), check=True, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip

    def make_venv(self) -> None:
        """The virtualenv of these exact requirements, made once: a finished one has `.ready`."""
        if (self.venv / ".ready").exists():
            return
        for old in self.venv.parent.glob(f"{self.name}-*"):
            shutil.rmtree(old)
        print(f"creating {self.venv.relative_to(harness.ROOT)} ({self.requirements.name})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        pip = [self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(self.requirements)]
        with open(self.venv / "pip.log", "w") as log:
            subprocess.run(pip, check=True, stdout=log, stderr=subprocess.STDOUT)
        (self.venv / ".ready").write_text("")

    def write_project(self) -> None:
        if self.cwd.exists():
            shutil.rmtree(self.cwd)
        for path, text in project_files(self.app, self.settings(), self.tasks(), self.discover).items():
            (self.cwd / path).parent.mkdir(parents=True, exist_ok=True)
            (self.cwd / path).write_text(text)

    def settings(self) -> str:
        return ""

    def tasks(self) -> str | None:
        return None

    def start_workers(self, workers: int, name: str) -> harness.Child:
        argv = [str(self.venv / "bin" / "celery"), "-A", "peerproj", "worker", "--concurrency", str(workers),
                "--pool", "prefork", "-Q", self.queue, "--loglevel", "WARNING", "-n", f"{self.queue}@%h"]  # fmt: skip
        return harness.Child(f"peers-{self.name}-{name}", argv, self.env())

    def versions(self) -> dict:
        lines = self.requirements.read_text().splitlines()
        return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


class DjangoWebhook(Peer):
    name = "django-webhook"
    app = "django_webhook"

    def settings(self) -> str:
        # The quickstart: whitelist the models whose changes send webhooks.
        return 'DJANGO_WEBHOOK = dict(MODELS=["crm.Lead", "crm.Prospect"])\n'


class DjangoRestHooks(Peer):
    name = "django-rest-hooks"
    app = "rest_hooks"
    # Only the project's app: the package's own rest_hooks/tasks.py imports `celery.task`, which
    # Celery 5 removed, so discovering every installed app's tasks fails at the worker's start.
    discover = '["crm"]'

    def settings(self) -> str:
        return 'HOOK_EVENTS = {"lead.created": "crm.Lead.created"}\nHOOK_DELIVERER = "crm.tasks.deliver_hook_wrapper"\n'

    def tasks(self) -> str:
        # The README's "Asynchronous Hooks via Celery" deliverer, as a Celery 5 task (`celery.task.Task`
        # is gone), with the package's own tasks.py encoder: Celery hands the payload's datetimes back
        # as datetimes, which plain json.dumps refuses.
        return """import json

import requests
from celery import shared_task
from django.core.serializers.json import DjangoJSONEncoder


@shared_task(bind=True, max_retries=5)
def deliver_hook(self, target, payload, instance_id=None, hook_id=None, **kwargs):
    try:
        response = requests.post(
            url=target,
            data=json.dumps(payload, cls=DjangoJSONEncoder),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code >= 500:
            response.raise_for_status()
    except requests.ConnectionError:
        delay_in_seconds = 2**self.request.retries
        self.retry(countdown=delay_in_seconds)


def deliver_hook_wrapper(target, payload, instance, hook):
    # pass IDs, not objects
    instance_id = instance.id if instance is not None else None
    kwargs = dict(target=target, payload=payload, instance_id=instance_id, hook_id=hook.id)
    deliver_hook.apply_async(kwargs=kwargs)
"""


def project_files(app: str, extra_settings: str, tasks: str | None, discover: str = "") -> dict[str, str]:
    """The minimal Django project of a peer: settings, Celery as its Django guide sets it up, and
    the `crm` app whose `Lead` (this project's lead fields, plus the owner that django-rest-hooks
    needs) fires the hooks; `Prospect` has the same fields and fires none."""
    files = {
        "manage.py": (
            "import os\nimport sys\n\n"
            'if __name__ == "__main__":\n'
            '    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")\n'
            "    from django.core.management import execute_from_command_line\n\n"
            "    execute_from_command_line(sys.argv)\n"
        ),
        "peerproj/__init__.py": 'from .celery import app as celery_app\n\n__all__ = ("celery_app",)\n',
        "peerproj/celery.py": (
            "import os\n\nfrom celery import Celery\n\n"
            'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")\n'
            'app = Celery("peerproj")\n'
            'app.config_from_object("django.conf:settings", namespace="CELERY")\n'
            f"app.autodiscover_tasks({discover})\n"
        ),
        "peerproj/settings.py": (
            "import os\nfrom urllib.parse import urlsplit\n\n"
            '_db = urlsplit(os.environ["PEER_DATABASE_URL"])\n'
            'SECRET_KEY = "benchmark-only"\n'
            "DEBUG = False\n"
            'ALLOWED_HOSTS = ["127.0.0.1"]\n'
            "USE_TZ = True\n"
            'DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"\n'
            f'INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "{app}", "crm"]\n'
            "DATABASES = {\n"
            '    "default": {\n'
            '        "ENGINE": "django.db.backends.postgresql",\n'
            '        "NAME": _db.path.lstrip("/"),\n'
            '        "USER": _db.username or "",\n'
            '        "PASSWORD": _db.password or "",\n'
            '        "HOST": _db.hostname,\n'
            '        "PORT": str(_db.port or 5432),\n'
            '        "CONN_MAX_AGE": 600,\n'
            "    }\n"
            "}\n"
            'CELERY_BROKER_URL = os.environ["PEER_BROKER_URL"]\n'
            'CELERY_TASK_DEFAULT_QUEUE = os.environ["PEER_QUEUE"]\n'
            'LOGGING = {"version": 1, "disable_existing_loggers": False,\n'
            '           "handlers": {"console": {"class": "logging.StreamHandler"}},\n'
            '           "root": {"handlers": ["console"], "level": "WARNING"}}\n' + extra_settings
        ),
        "crm/__init__.py": "",
        "crm/models.py": (
            "from django.conf import settings\nfrom django.db import models\n\n\n"
            "class LeadFields(models.Model):\n"
            '    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")\n'
            "    fullname = models.CharField(max_length=200)\n"
            '    email = models.EmailField(blank=True, default="")\n'
            "    attributes = models.JSONField(default=dict, blank=True)\n"
            "    created_at = models.DateTimeField(auto_now_add=True)\n"
            "    updated_at = models.DateTimeField(auto_now=True)\n\n"
            "    class Meta:\n        abstract = True\n\n\n"
            "class Lead(LeadFields):\n    pass\n\n\n"
            "class Prospect(LeadFields):\n    pass\n"
        ),
    }
    if tasks:
        files["crm/tasks.py"] = tasks
    return files
