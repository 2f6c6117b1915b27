from django.urls import path

from . import views, views_credentials

app_name = "hosts"
urlpatterns = [
    path("", views.host_list, name="list"),
    path("credentials/", views_credentials.credential_list, name="credentials"),
    path("credentials/new/", views_credentials.credential_new, name="credential_new"),
    path("<slug:name>/", views.host_detail, name="detail"),
    path("<slug:name>/edit/", views_credentials.host_edit, name="edit"),
]
