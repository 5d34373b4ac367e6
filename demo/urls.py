from django.urls import path

from demo import views

app_name = "demo"
urlpatterns = [
    path("reports/<int:report_id>/", views.start_report, name="start-report"),
]
