from django.apps import AppConfig


class CalendarProjectionConfig(AppConfig):
    name = "calendar_projection"
    verbose_name = "Calendar projection"
    default_auto_field = "django.db.models.BigAutoField"
