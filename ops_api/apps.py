from django.apps import AppConfig


class OpsApiConfig(AppConfig):
    name = "ops_api"
    verbose_name = "Operations API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The API description annotates the views from outside them (drf-spectacular view extensions).
        from ops_api import openapi

        openapi.register()
