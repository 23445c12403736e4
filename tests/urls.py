from django.contrib import admin
from django.urls import path
from health_check.views import HealthCheckView

from django_metronome.observe.health_check import (
    NothingOverdue,
    NothingQuarantined,
    SchedulerAlive,
)
from django_metronome.observe.views import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metronome/metrics", metrics_view),
    path(
        "health/",
        HealthCheckView.as_view(
            checks=[SchedulerAlive, (NothingOverdue, {"max_overdue": 300}), NothingQuarantined]
        ),
    ),
]
