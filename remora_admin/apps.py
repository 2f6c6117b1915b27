from django.apps import AppConfig


class RemoraAdminConfig(AppConfig):
    name = "remora_admin"
    verbose_name = "Remora Admin"
