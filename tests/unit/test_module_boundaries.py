"""Design boundaries that reviews found broken, checked on the source: which module may import which."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("scheduling", "calendar_projection", "ops_api")


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or deferred inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _sources(*packages: str) -> list[Path]:
    return [p for package in packages for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def test_no_app_imports_the_project_configuration_package():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources(*APPS)
        if any(name == "config" or name.startswith("config.") for name in _imported_modules(path))
    ]
    assert offenders == []


def test_the_models_never_import_the_event_log_or_the_signal_receivers():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources("scheduling/models")
        if any(
            name.startswith(("scheduling.event_log", "scheduling.signals"))
            for name in _imported_modules(path)
        )
    ]
    assert offenders == []


def test_only_the_app_config_imports_the_signal_receivers():
    importers = [
        str(path.relative_to(ROOT))
        for path in _sources(*APPS, "tests", "bench")
        if any(name.startswith("scheduling.signals") for name in _imported_modules(path))
    ]
    assert importers == ["scheduling/apps.py"]


def test_signals_module_holds_receivers_and_private_helpers_only():
    tree = ast.parse((ROOT / "scheduling" / "signals.py").read_text())
    public_non_receivers = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and not node.name.startswith("_")
        and not any(
            isinstance(d, ast.Call) and getattr(d.func, "id", "") == "receiver" for d in node.decorator_list
        )
    ]
    assert public_non_receivers == []
