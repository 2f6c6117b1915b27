"""/api/: the REST API, its OpenAPI 3 schema and its browsable docs."""

from django.conf import settings
from django.urls import path, re_path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import (
    errors,
    schema,  # noqa: F401 - registers the authentication schemes
)
from . import views_inventory as inventory
from . import views_other as other
from . import views_runs as runs

# Swagger UI sets inline styles as it draws: its page alone may, with scripts still only ours.
DOCS_CSP = {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]}
docs = csp_override(DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api:schema"))

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs, name="docs"),
    path("me/", other.Me.as_view(), name="me"),
    path("hosts/", inventory.HostList.as_view(), name="hosts"),
    path("hosts/<slug:name>/", inventory.HostDetail.as_view(), name="host"),
    path("services/", inventory.ServiceList.as_view(), name="services"),
    path("phases/", inventory.PhaseList.as_view(), name="phases"),
    path("plan/", inventory.Plan.as_view(), name="plan"),
    path("plan/apply/", inventory.PlanApply.as_view(), name="plan_apply"),
    path("plan/batches/<int:pk>/", inventory.BatchDetail.as_view(), name="batch"),
    path("plan/batches/<int:pk>/resume/", inventory.BatchResume.as_view(), name="batch_resume"),
    path("recipes/", inventory.RecipeList.as_view(), name="recipes"),
    path("recipes/<slug:name>/", inventory.RecipeDetail.as_view(), name="recipe"),
    path("runs/", runs.RunList.as_view(), name="runs"),
    path("runs/<int:pk>/", runs.RunDetail.as_view(), name="run"),
    path("runs/<int:pk>/output/", runs.RunOutput.as_view(), name="run_output"),
    path("runs/<int:pk>/cancel/", runs.RunCancel.as_view(), name="run_cancel"),
    path("runs/<int:pk>/approve/", runs.RunApprove.as_view(), name="run_approve"),
    path("runs/<int:pk>/reject/", runs.RunReject.as_view(), name="run_reject"),
    path("schedules/", other.ScheduleList.as_view(), name="schedules"),
    path("schedules/<int:pk>/", other.ScheduleDetail.as_view(), name="schedule"),
    path("schedules/<int:pk>/enable/", other.ScheduleEnable.as_view(), name="schedule_enable"),
    path("schedules/<int:pk>/disable/", other.ScheduleDisable.as_view(), name="schedule_disable"),
    path("alerts/", other.AlertList.as_view(), name="alerts"),
    path("alerts/<int:pk>/acknowledge/", other.AlertAcknowledge.as_view(), name="alert_ack"),
    path("workers/", other.WorkerList.as_view(), name="workers"),
    path("audit/events/", other.EventList.as_view(), name="events"),
    path("audit/events/<int:sequence>/", other.EventDetail.as_view(), name="event"),
    path("audit/export/", other.EventExport.as_view(), name="export"),
    path("tokens/", other.TokenList.as_view(), name="tokens"),
    path("tokens/<int:pk>/revoke/", other.TokenRevoke.as_view(), name="token_revoke"),
    # Last: any other address ending in a slash (one without is still sent to its slashed
    # form first) answers the API's JSON 404. Unnamed: it shows nothing, so it asks no policy.
    re_path(r"^(?P<path>.*/)$", errors.no_such_address),
]
