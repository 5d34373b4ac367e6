from django.contrib import admin
from django.urls import include, path

from dashboard.views import healthz, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("api/", include("dashboard.api_urls")),
    path("demo/", include("demo.urls")),
    path("healthz", healthz, name="healthz"),  # open to load balancers; counts only
    path("metrics", metrics, name="metrics"),  # staff, or JOBS_METRICS_TOKEN
]
