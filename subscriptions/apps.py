from django.apps import AppConfig
from django.conf import settings

from core.sql import check_sqlite_version


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "REST Hooks"

    def ready(self) -> None:
        check_sqlite_version(settings.DATABASES["default"]["ENGINE"])
        from . import operational, signals  # noqa: F401  (connect the domain and lifecycle listeners)
