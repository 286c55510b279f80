from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's side: health, metrics, the admin dashboard and its pages."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"
