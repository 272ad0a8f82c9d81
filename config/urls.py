from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ops_api.errors import json_error
from ops_api.views import dashboard, metrics

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("dashboard/panels/<str:name>", dashboard.panel, name="dashboard-panel"),
    path("dashboard/jobs/<str:job_id>/runs", dashboard.job_runs, name="dashboard-job-runs"),
    path("dashboard/logout", dashboard.sign_out, name="dashboard-logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("ops_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("metrics", metrics.prometheus_metrics, name="prometheus-metrics"),
]

if not any("whitenoise" in name for name in settings.MIDDLEWARE):
    # Until WhiteNoise serves /static/, the finders do, so the dashboard works with no network and no
    # collectstatic (the runtime runs with DEBUG off, where staticfiles' own serving is disabled).
    urlpatterns.append(re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}, name="static"))


# Django's default page, without looking up a 404.html template (none exists) and compiling a fallback
# template on every miss: that was a fifth of a 404's cost (issue 10).
NOT_FOUND_PAGE = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n"
)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_error(404, "not_found", f"no such endpoint: {request.path}")
    return HttpResponseNotFound(NOT_FOUND_PAGE)


def handler500(request: HttpRequest) -> HttpResponse:
    return json_error(500, "internal_error", "the server failed; the error has been logged")
