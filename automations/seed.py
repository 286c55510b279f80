"""Demo content for `manage.py seed_demo`: the three example automations in the demo project."""

import os

from django.urls import reverse

from support.models import Project

from . import examples
from .flow import validate_flow
from .models import Automation


def seed_examples(project: Project) -> list[str]:
    """Create the example automations once (found again by name) and describe them."""
    base_url = os.environ.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    orders_api = os.environ.get("DEMO_ORDERS_API", "https://orders.example.com/api")
    lines = ["automations:"]
    for name in examples.NAMES:
        example = examples.load(name, orders_api=orders_api)
        checked = validate_flow(example["flow"])
        if checked.problems:
            raise ValueError(f"example {name} is invalid: {checked.problems}")
        automation, created = Automation.objects.get_or_create(
            project=project,
            name=example["name"],
            defaults={"flow": checked.flow, "created_by": project.created_by},
        )
        url = reverse("automations:webhook", kwargs={"webhook_id": automation.webhook_id})
        debug = reverse("automations:debug", args=[automation.pk])
        lines.append(
            f"  {automation.name}{' (new)' if created else ''}: POST {base_url}{url}   "
            f"(dev: {base_url}{url}/dev, debug page: {base_url}{debug})"
        )
    return lines
