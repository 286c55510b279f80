"""Django admin for the support domain: what an operator looks up when a customer or an agent asks
"who got this conversation, and why?"."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from rest_framework.authtoken.models import TokenProxy

from .models import Department, Event, Faq, FaqKb, Group, Lead, Message, Project, ProjectUser, Request
from .services import delete_project

RECENT_DECISIONS = 10


class ProjectUserInline(admin.TabularInline):
    model = ProjectUser
    extra = 0
    fields = ("user", "email", "role", "status", "user_available", "max_assigned_chat")
    raw_id_fields = ("user",)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created_by", "created_at", "deleted_at")
    list_filter = (("deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "id")
    readonly_fields = ("id", "created_at", "updated_at", "deleted_at")
    raw_id_fields = ("created_by",)
    inlines = [ProjectUserInline]

    def delete_model(self, request, obj) -> None:
        """As its owner deletes it: closed now, erased once its last webhooks are sent."""
        delete_project(obj)

    def delete_queryset(self, request, queryset) -> None:
        for project in queryset:
            delete_project(project)


@admin.register(ProjectUser)
class ProjectUserAdmin(admin.ModelAdmin):
    list_display = ("email", "project", "role", "status", "user_available", "max_assigned_chat", "created_at")
    list_filter = ("role", "status", "user_available")
    search_fields = ("email", "user__username", "project__name", "project__id")
    raw_id_fields = ("project", "user")
    list_select_related = ("project",)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "member_count", "created_at")
    search_fields = ("name", "project__name", "project__id")
    raw_id_fields = ("project",)
    list_select_related = ("project",)

    @admin.display(description="members")
    def member_count(self, obj: Group) -> int:
        return len(obj.members or ())


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "routing", "bot", "group", "default", "last_decision")
    list_filter = ("routing", "default")
    search_fields = ("name", "project__name", "project__id")
    raw_id_fields = ("project", "bot", "group")
    list_select_related = ("project", "bot", "group")
    readonly_fields = ("id", "created_at", "updated_at", "recent_decisions")
    fields = ("id", "project", "name", "routing", "bot", "group", "default", "recent_decisions", "created_at")

    def _decisions(self, obj: Department):
        return (
            Request.objects.filter(department=obj)
            .exclude(routing_reason="")
            .order_by("-updated_at")
            .only("id", "request_id", "status", "participants", "routed_by", "routing_reason", "updated_at")
        )

    @admin.display(description="last routing decision")
    def last_decision(self, obj: Department) -> str:
        latest = self._decisions(obj).first()
        return f"{latest.routed_by or '-'}: {latest.routing_reason}" if latest else "-"

    @admin.display(description=f"last {RECENT_DECISIONS} routing decisions")
    def recent_decisions(self, obj: Department) -> str:
        rows = list(self._decisions(obj)[:RECENT_DECISIONS]) if obj.pk else []
        if not rows:
            return "No conversation routed in this department yet."
        body = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                    reverse("admin:support_request_change", args=[row.pk]),
                    row.request_id[-12:],
                    row.get_status_display(),
                    ", ".join(map(str, row.participants)) or "-",
                    row.routed_by or "-",
                    row.routing_reason,
                )
                for row in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>when</th><th>request</th><th>status</th><th>participants</th>"
            "<th>routed by</th><th>why</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )


@admin.register(FaqKb)
class FaqKbAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "created_at")
    search_fields = ("name", "description", "project__name")
    raw_id_fields = ("project",)


@admin.register(Faq)
class FaqAdmin(admin.ModelAdmin):
    list_display = ("question", "faq_kb", "project", "created_at")
    search_fields = ("question", "answer")
    raw_id_fields = ("project", "faq_kb")
    list_select_related = ("faq_kb", "project")


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("fullname", "email", "lead_id", "project", "created_at")
    search_fields = ("fullname", "email", "id", "lead_id")
    raw_id_fields = ("project",)
    list_select_related = ("project",)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("created_at", "sender", "sender_fullname", "type", "text")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Request)
class RequestAdmin(admin.ModelAdmin):
    list_display = (
        "request_id",
        "project",
        "status",
        "department",
        "participants",
        "routed_by",
        "routing_reason",
        "channel_name",
        "created_at",
    )
    list_filter = ("status", "routed_by", "channel_name", "department")
    search_fields = ("request_id", "id", "first_text", "lead__fullname", "lead__email", "routing_reason")
    raw_id_fields = ("project", "lead", "department")
    list_select_related = ("project", "department")
    readonly_fields = ("id", "routed_by", "routing_reason", "closed_at", "created_at", "updated_at")
    date_hierarchy = "created_at"
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("text_start", "sender", "request", "channel_name", "created_at")
    list_filter = ("type", "channel_name")
    search_fields = ("text", "sender", "request__request_id")
    raw_id_fields = ("project", "request")

    @admin.display(description="text")
    def text_start(self, obj: Message) -> str:
        return obj.text[:80]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "created_by", "created_at")
    list_filter = ("name",)
    search_fields = ("name", "project__name")
    raw_id_fields = ("project", "created_by")


# API tokens stay out of the admin. DRF's own TokenAdmin shows every full token key (changelist,
# page titles, breadcrumbs, the admin's action log), i.e. every user's credentials to anyone
# reading those pages; tokens are made with `manage.py drf_create_token <username>` instead.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
