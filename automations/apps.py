from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Webhook automations"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (schedules the stale-run sweep after migrate)
