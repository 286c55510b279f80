"""Settings for bench/automations.py: the product's settings plus a plain view to compare with."""

from tiledesk_hooks.settings import *  # noqa: F403

ROOT_URLCONF = "bench.automations_urls"
