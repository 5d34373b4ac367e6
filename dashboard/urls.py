from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/actions/<slug:action>/", views.job_action, name="action"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job"),
    path("jobs/<uuid:job_id>/live/", views.job_live, name="job-live"),
    path("jobs/<uuid:job_id>/steps/<int:step_id>/limits/", views.step_limits,
         name="step-limits"),
    path("value/<str:kind>/<str:pk>/<str:field>/", views.full_value, name="value"),
]
