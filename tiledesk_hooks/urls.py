from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from tiledesk import urls as tiledesk_urls

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

# --- Tiledesk's own paths: sign-in and /{project_id}/..., also under /v3/ (Tiledesk's base path);
# last, so that a project id never shadows a route above.
urlpatterns += [
    path("auth/", include(tiledesk_urls.signin)),
    path("v3/auth/", include((tiledesk_urls.signin, "v3-auth"))),
    path("v3/", include((tiledesk_urls.projects, "v3"))),
    path("", include(tiledesk_urls.projects)),
]
