"""The JSON status API for the app's own frontends (mounted at /api/ in config.urls)."""

from django.urls import path

from dashboard import views

app_name = "jobs_api"
urlpatterns = [
    path("jobs/<uuid:job_id>/status/", views.job_status, name="job-status"),
]
