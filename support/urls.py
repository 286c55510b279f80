from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("projects", views.ProjectViewSet, basename="project")

scoped = DefaultRouter(trailing_slash=True)
scoped.include_root_view = False
scoped.register("project_users", views.ProjectUserViewSet, basename="project-user")
scoped.register("groups", views.GroupViewSet, basename="group")
scoped.register("departments", views.DepartmentViewSet, basename="department")
scoped.register("faq_kb", views.FaqKbViewSet, basename="faqkb")
scoped.register("faqs", views.FaqViewSet, basename="faq")
scoped.register("leads", views.LeadViewSet, basename="lead")
scoped.register("requests", views.RequestViewSet, basename="request")
scoped.register(r"requests/(?P<request_pk>[^/.]+)/messages", views.MessageViewSet, basename="message")
scoped.register("events", views.EventViewSet, basename="event")

urlpatterns = [
    path("", include(router.urls)),
    path("projects/<str:project_id>/", include(scoped.urls)),
]
