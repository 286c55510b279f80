"""Idempotent demo data: an owner with a password and an API token, a project with a department,
a bot and an agent. Prints what a newcomer needs to log in and call the API."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from support.models import Department, FaqKb, Project, ProjectUser, Role

DEMO_USER = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PROJECT = "Demo project"


class Command(BaseCommand):
    help = "Create (or find) the demo owner, project and token, and print them with the URLs."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "demo-password"))
        parser.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:8000"))

    @transaction.atomic
    def handle(self, *args, password: str, base_url: str, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=DEMO_USER, defaults={"email": DEMO_EMAIL, "is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
        token, _ = Token.objects.get_or_create(user=user)
        project = Project.objects.filter(name=DEMO_PROJECT, created_by=user, deleted_at__isnull=True).first()
        if project is None:
            project = Project.objects.create(name=DEMO_PROJECT, created_by=user)
            ProjectUser.objects.create(project=project, user=user, email=DEMO_EMAIL, role=Role.OWNER)
        agent, _ = User.objects.get_or_create(username="demo-agent", defaults={"email": "agent@example.com"})
        ProjectUser.objects.get_or_create(
            project=project, user=agent, defaults={"email": "agent@example.com", "role": Role.AGENT}
        )
        bot, _ = FaqKb.objects.get_or_create(project=project, name="Demo bot", defaults={"description": "Answers FAQs"})
        Department.objects.get_or_create(
            project=project, name="Default", defaults={"routing": Department.Routing.ASSIGNED, "default": True}
        )
        self._seed_extras(project)
        api = f"{base_url}/api/projects/{project.pk}"
        self.stdout.write(
            f"login:     {DEMO_USER} / {password if created else '(unchanged)'}  ->  {base_url}/admin/\n"
            f"token:     {token.key}\n"
            f"project:   {project.pk}\n"
            f"API:       {base_url}/api/   (Authorization: Token {token.key})\n"
            f"requests:  {api}/requests/\n"
            f"webhooks:  {api}/subscriptions/   logs: {api}/subscriptions/logs/\n"
            f"events:    {base_url}/api/events/\n"
        )

    def _seed_extras(self, project: Project) -> None:
        """Hook for the other apps' demo content (automations add their example flows here)."""
        try:
            from automations.seed import seed_examples
        except ImportError:
            return
        for line in seed_examples(project):
            self.stdout.write(line)
