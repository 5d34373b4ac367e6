from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from demo.views import index

# A 400 that says why (the project's own reasons only, escaped and cut).
handler400 = "jobs.views.bad_request"

urlpatterns = [
    path("", index, name="index"),  # where everything is, for a newcomer
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("demo/", include("demo.urls")),
    # /healthz (open to load balancers; counts only), /metrics (staff, or
    # JOBS_METRICS_TOKEN) and the status API at api/: the jobs app's, no dashboard needed.
    path("", include("jobs.urls")),
    # Browsers ask for it on every site; the dashboard's own icon, not a 404 in the log.
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True)),
]
