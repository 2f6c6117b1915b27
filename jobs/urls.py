from django.urls import path

from . import views, views_keys, views_maintenance, views_plan, views_schedules, views_workers

app_name = "jobs"
urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/output/", views.run_output, name="run_output"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/check/", views.run_resolve, {"kill": False}, name="run_check"),
    path("runs/<int:pk>/kill/", views.run_resolve, {"kill": True}, name="run_kill"),
    path("runs/<int:pk>/approve/", views.run_decide, {"verdict": "approve"}, name="run_approve"),
    path("runs/<int:pk>/reject/", views.run_decide, {"verdict": "reject"}, name="run_reject"),
    path("hosts/<slug:name>/launch/", views.launch, name="launch"),
    path("schedules/", views_schedules.schedule_list, name="schedules"),
    path("schedules/new/", views_schedules.schedule_new, name="schedule_new"),
    path("schedules/preview/", views_schedules.schedule_preview, name="schedule_preview"),
    path("schedules/<int:pk>/", views_schedules.schedule_detail, name="schedule"),
    path("schedules/<int:pk>/edit/", views_schedules.schedule_edit, name="schedule_edit"),
    path(
        "schedules/<int:pk>/enable/",
        views_schedules.schedule_toggle,
        {"enable": True},
        name="schedule_enable",
    ),
    path(
        "schedules/<int:pk>/disable/",
        views_schedules.schedule_toggle,
        {"enable": False},
        name="schedule_disable",
    ),
    path("maintenance/", views_maintenance.maintenance_page, name="maintenance"),
    path("maintenance/new/", views_maintenance.maintenance_new, name="maintenance_new"),
    path(
        "maintenance/<int:pk>/delete/",
        views_maintenance.maintenance_delete,
        name="maintenance_delete",
    ),
    path("workers/", views_workers.worker_list, name="workers"),
    path("alerts/", views_schedules.alert_list, name="alerts"),
    path(
        "alerts/<int:pk>/acknowledge/",
        views_schedules.alert_acknowledge,
        name="alert_acknowledge",
    ),
    path("plan/", views_plan.plan_page, name="plan"),
    path("plan/apply/", views_plan.plan_apply, name="plan_apply"),
    path("plan/<int:pk>/", views_plan.plan_batch, name="plan_batch"),
    path("plan/<int:pk>/resume/", views_plan.plan_resume, name="plan_resume"),
    path("hosts/<slug:name>/scan-key/", views_keys.scan_key, name="scan_key"),
    path("hosts/<slug:name>/trust-key/", views_keys.trust_key, name="trust_key"),
]
