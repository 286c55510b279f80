"""Project membership and roles: the one place that decides who may see and change what.

A caller who is not a member of a project gets 404 for everything under it (the project's
existence is not revealed); a member whose role may not do something gets 403."""

from functools import cached_property

from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import MANAGER_ROLES, Project, ProjectUser, Role

ALL_ROLES = (Role.OWNER, Role.ADMIN, Role.AGENT)


def membership_of(user, project_id: str) -> ProjectUser | None:
    if not user or not user.is_authenticated:
        return None
    return (
        ProjectUser.objects.select_related("project")
        .filter(project_id=project_id, user=user, status=ProjectUser.Status.ACTIVE, project__deleted_at__isnull=True)
        .first()
    )


class HasProjectRole(BasePermission):
    """Reads need a role in `view.read_roles`, writes one in `view.write_roles`."""

    def has_permission(self, request, view) -> bool:
        membership = view.membership
        roles = view.read_roles if request.method in SAFE_METHODS else view.write_roles
        return membership.role in roles


class ProjectScopedMixin:
    """For views under /api/projects/{project_id}/: resolves the project from the URL once,
    404s non-members, and scopes querysets and new objects to that project."""

    read_roles = ALL_ROLES
    write_roles = MANAGER_ROLES
    project_url_kwarg = "project_id"

    @cached_property
    def membership(self) -> ProjectUser:
        found = membership_of(self.request.user, self.kwargs[self.project_url_kwarg])
        if found is None:
            raise Http404("No such project.")
        return found

    @property
    def project(self) -> Project:
        return self.membership.project

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.user.is_authenticated and self.project_url_kwarg in self.kwargs:
            context["project"] = self.project
        return context

    def get_queryset(self):
        return super().get_queryset().filter(project=self.project)

    def perform_create(self, serializer) -> None:
        serializer.save(project=self.project)
