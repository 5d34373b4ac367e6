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
    path("jobs/all/<slug:action>/", views.bulk_start, name="bulk"),
    path("queues/", views.queue_list, name="queues"),
    path("queues/pause/", views.queue_pause, name="queue-pause"),
    path("workers/", views.worker_list, name="workers"),
    path("failures/", views.failure_list, name="failures"),
    path("tasks/", views.task_list, name="tasks"),
    path("tasks/<str:task_name>/", views.task_list, name="task"),
    path("activity/", views.activity, name="activity"),
    path("activity/<int:operation_id>/", views.operation, name="operation"),
    path("value/<str:kind>/<str:pk>/<str:field>/", views.full_value, name="value"),
]
