from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ops_api.errors import json_error
from ops_api.views import home, metrics

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("ops_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("metrics", metrics.prometheus_metrics, name="prometheus-metrics"),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_error(404, "not_found", f"no such endpoint: {request.path}")
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    return json_error(500, "internal_error", "the server failed; the error has been logged")
