from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import openapi  # noqa: F401  (registers the schema extensions)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("subscriptions.urls")),
    path("api/", include("support.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include("automations.api_urls")),
    path("", include("automations.urls")),
]

# --- console: API docs (OpenAPI 3 schema, Swagger UI, ReDoc; assets served locally) -------------
urlpatterns += [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

# --- console: operations (/healthz, /metrics)
urlpatterns += [path("", include("console.urls"))]

# --- console: Tiledesk-compatible REST Hooks paths (/{project_id}/subscriptions...), last so that
# they never shadow a route above.
urlpatterns += [path("", include("subscriptions.tiledesk_urls"))]
