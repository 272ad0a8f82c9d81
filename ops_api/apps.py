from django.apps import AppConfig


class OpsApiConfig(AppConfig):
    name = "ops_api"
    verbose_name = "Operations API"
    default_auto_field = "django.db.models.BigAutoField"
