"""Who may see and change what in a project: the one place that decides it.

Two kinds of callers act in a project:
- people, through their membership and its role (owner, admin, agent);
- callers that are not people (`ProjectCaller`, e.g. a subscription acting with its envelope's
  token): bound to one project, with no role, allowed exactly the actions they list.

A caller outside a project gets 404 for everything under it (the project's existence is not
revealed); a caller of the project who may not do something gets 403."""

from dataclasses import dataclass
from functools import cached_property

from django.http import Http404
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import MANAGER_ROLES, Project, ProjectUser, Role

ALL_ROLES = (Role.OWNER, Role.ADMIN, Role.AGENT)


class ProjectCaller:
    """An authenticated caller that is not a person: it belongs to one project and may do exactly
    `actions`, each named `<resource>.<action>` after the view that does it (`request.close`,
    `message.create`: see `ProjectScopedMixin.permission_resource`). Anything it does not list is
    refused, including what every member may do, and it never stands for a user: code that needs a
    person (a role, a user id) never sees it."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, project_id: str, actions: frozenset[str], author_id: str, author_name: str = "") -> None:
        self.project_id = project_id
        self.actions = actions
        # Who the messages it posts are from.
        self.author_id = author_id
        self.author_name = author_name

    def may(self, resource: str, action: str | None) -> bool:
        return bool(resource and action) and f"{resource}.{action}" in self.actions


def is_person(caller) -> bool:
    return bool(caller) and caller.is_authenticated and not isinstance(caller, ProjectCaller)


def membership_of(user, project_id: str) -> ProjectUser | None:
    if not is_person(user):
        return None
    return (
        ProjectUser.objects.select_related("project")
        .filter(project_id=project_id, user=user, status=ProjectUser.Status.ACTIVE, project__deleted_at__isnull=True)
        .first()
    )


@dataclass(frozen=True)
class ProjectAccess:
    """A caller's standing in one project: a person's membership, or a `ProjectCaller`."""

    project: Project
    membership: ProjectUser | None = None
    caller: ProjectCaller | None = None

    def allows(self, request, view) -> bool:
        if self.caller is not None:
            return self.caller.may(view.permission_resource, getattr(view, "action", None))
        roles = view.action_roles.get(getattr(view, "action", None))
        if roles is None:
            roles = view.read_roles if request.method in SAFE_METHODS else view.write_roles
        return self.membership.role in roles


def access_to(caller, project_id: str) -> ProjectAccess | None:
    """The caller's access to the project, or None when it is outside it (or the project is gone)."""
    if isinstance(caller, ProjectCaller):
        if caller.project_id != project_id:
            return None
        project = Project.objects.filter(pk=project_id, deleted_at__isnull=True).first()
        return ProjectAccess(project, caller=caller) if project is not None else None
    membership = membership_of(caller, project_id)
    return ProjectAccess(membership.project, membership=membership) if membership is not None else None


class HasProjectRole(BasePermission):
    """People: reads need a role in `view.read_roles`, writes one in `view.write_roles`, and the
    view's actions listed in `view.action_roles` the roles listed there. Callers that are not
    people: the view's `<permission_resource>.<action>` among their actions."""

    def has_permission(self, request, view) -> bool:
        return view.access.allows(request, view)


class PeopleOnly(BasePermission):
    """For what only people do (projects themselves): a `ProjectCaller` is refused, 403 about its
    own project and 404 about any other."""

    message = "Only the project's people may do this."

    def has_permission(self, request, view) -> bool:
        caller = request.user
        if not isinstance(caller, ProjectCaller):
            return True
        named = view.kwargs.get("pk")
        if named is not None and named != caller.project_id:
            raise Http404("No such project.")
        return False


class ProjectScopedMixin:
    """For views under /api/projects/{project_id}/: resolves the project and the caller's access
    once, 404s callers outside the project, and scopes querysets and new objects to it.

    `permission_resource` names what the view acts on for `ProjectCaller`s' actions (a view that
    leaves it empty is for people only)."""

    read_roles = ALL_ROLES
    write_roles = MANAGER_ROLES
    action_roles: dict[str, tuple] = {}
    project_url_kwarg = "project_id"
    permission_resource = ""

    @cached_property
    def access(self) -> ProjectAccess:
        found = access_to(self.request.user, self.kwargs[self.project_url_kwarg])
        if found is None:
            raise Http404("No such project.")
        return found

    @property
    def membership(self) -> ProjectUser:
        """The caller's membership, for rules about people's roles. A `ProjectCaller` never gets this
        far (its actions need no role); should a view ask anyway, the answer is a refusal."""
        if self.access.membership is None:
            raise PermissionDenied("Only the project's people may do this.")
        return self.access.membership

    @property
    def project(self) -> Project:
        return self.access.project

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.user.is_authenticated and self.project_url_kwarg in self.kwargs:
            context["project"] = self.project
        return context

    def get_queryset(self):
        return super().get_queryset().filter(project=self.project)

    def perform_create(self, serializer) -> None:
        serializer.save(project=self.project)
