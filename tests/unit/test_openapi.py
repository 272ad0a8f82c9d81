"""The OpenAPI description: served, complete, offline, and the checked-in copy is current."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "docs" / "openapi.yaml"


def generated() -> str:
    out = StringIO()
    call_command("spectacular", stdout=out)
    return out.getvalue()


def api_routes() -> set[str]:
    """Every /api/v1/ route of the URLconf, written the way OpenAPI writes paths."""
    routes: set[str] = set()

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns, "")
    return routes


def test_the_checked_in_schema_is_current():
    assert CHECKED_IN.read_text() == generated(), (
        "docs/openapi.yaml is stale: run `uv run python manage.py spectacular --file docs/openapi.yaml`"
    )


def test_every_api_route_is_described_with_typed_bodies():
    schema = yaml.safe_load(generated())
    assert api_routes() <= set(schema["paths"]), api_routes() - set(schema["paths"])
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert any(code.startswith("2") for code in operation["responses"]), (path, method)
            text = str(operation)
            assert "Unspecified" not in text, f"{method.upper()} {path} has an undescribed body"


@pytest.mark.django_db
def test_the_schema_and_docs_page_are_served_without_a_token_and_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"openapi: 3.0.3" in schema.content
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger" in html.lower()
    assert not re.search(r"(src|href)=\"https?://", html), "the docs page loads nothing from the network"


def test_the_human_reference_names_every_operation_of_the_schema():
    reference = (ROOT / "docs" / "api.md").read_text()
    headings = "\n".join(line for line in reference.splitlines() if line.startswith("### "))
    schema = yaml.safe_load(CHECKED_IN.read_text())
    missing = [
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if f"{method.upper()} {path.removeprefix('/api/v1')}" not in headings
    ]
    assert not missing, f"docs/api.md has no heading for: {missing}"
