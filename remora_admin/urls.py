from django.contrib import admin
from django.urls import include, path

from hosts import views as host_views

from . import access_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("hosts/", include("hosts.urls")),
    path("phases/", host_views.phase_list, name="phases"),
    path("access/", access_views.access_report, name="access_report"),
    path("access/report.csv", access_views.access_report_csv, name="access_report_csv"),
    path("access/", include("remora_admin.access.urls")),
    path("audit/", include(("remora_admin.audit_views", "audit"))),
    path("api/", include("remora_admin.api.urls")),
    path("", include("jobs.urls")),
    path("admin/", admin.site.urls),
]

handler403 = "remora_admin.views.forbidden"
handler404 = "remora_admin.views.not_found"
