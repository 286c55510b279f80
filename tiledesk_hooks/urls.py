from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("subscriptions.urls")),
    path("api/", include("support.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include("automations.api_urls")),
    path("", include("automations.urls")),
]
