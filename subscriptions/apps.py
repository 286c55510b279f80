from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "REST Hooks"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the domain listeners)
