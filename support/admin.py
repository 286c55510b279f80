"""API tokens stay out of the admin. DRF's own TokenAdmin shows every full token key (changelist,
page titles, breadcrumbs, the admin's action log), i.e. every user's credentials to anyone
reading those pages; tokens are made with `manage.py drf_create_token <username>` instead."""

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
