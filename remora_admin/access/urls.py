from django.urls import path

from . import views

app_name = "access"
urlpatterns = [
    path("people/", views.people, name="people"),
    path("people/new/", views.person_new, name="person_new"),
    path("people/<int:pk>/", views.person_detail, name="person"),
    path("people/<int:pk>/deactivate/", views.person_deactivate, name="person_deactivate"),
    path("grants/new/", views.grant_new, name="grant_new"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="grant_revoke"),
    path("grants/<int:pk>/expiry/", views.grant_expiry, name="grant_expiry"),
    path("confirm-password/", views.confirm_password, name="confirm_password"),
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
    path("two-factor/", views.two_factor, name="two_factor"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="recovery_codes"),
]
