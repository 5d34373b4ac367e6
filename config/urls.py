from django.contrib import admin
from django.urls import include, path

from dashboard.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("api/", include("dashboard.api_urls")),
    path("demo/", include("demo.urls")),
    path("healthz", healthz, name="healthz"),  # open to load balancers; counts only
]
