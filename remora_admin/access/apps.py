from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "remora_admin.access"
    label = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the sign-in audit receivers)
