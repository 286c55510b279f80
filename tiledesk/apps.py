from django.apps import AppConfig


class TiledeskConfig(AppConfig):
    name = "tiledesk"
    verbose_name = "Tiledesk's own paths"
