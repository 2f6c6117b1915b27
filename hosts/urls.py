from django.urls import path

from . import views

app_name = "hosts"
urlpatterns = [
    path("", views.host_list, name="list"),
    path("<slug:name>/", views.host_detail, name="detail"),
]
