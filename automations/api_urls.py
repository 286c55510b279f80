"""Mounted under /api/: /api/projects/{project_id}/automations/..."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

scoped = DefaultRouter()
scoped.include_root_view = False
scoped.register("automations", views.AutomationViewSet, basename="automation")
scoped.register("secrets", views.SecretViewSet, basename="secret")

urlpatterns = [path("projects/<str:project_id>/", include(scoped.urls))]
