"""Shared bootstrap for the benchmarks in bench/: point Django at a throwaway PostgreSQL database,
create it if missing, migrate it, and offer a few small helpers. Import and call `bootstrap()` before
importing anything that touches Django models."""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/sched_bench"
_BENCH_LOCK_KEY = 0x5C4EDBE4  # session advisory lock: one benchmark per database at a time
_held: list[object] = []  # the connection holding that lock, kept open for the life of the process


def bootstrap(default_url: str = DEFAULT_DATABASE_URL) -> str:
    """Set up Django against DATABASE_URL (default: a local `sched_bench` db); returns the URL used."""
    url = os.environ.setdefault("DATABASE_URL", default_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    if _held:  # already bootstrapped in this process
        return url
    ensure_database(url)
    hold_bench_lock(url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return url


def ensure_database(url: str) -> None:
    """CREATE DATABASE for `url` if it does not exist, via the server's `postgres` maintenance db."""
    import psycopg
    from psycopg import sql

    name = psycopg.conninfo.conninfo_to_dict(url).get("dbname")
    if not name:
        raise SystemExit(f"DATABASE_URL has no database name: {url}")
    with psycopg.connect(url, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def hold_bench_lock(url: str) -> None:
    """Wait until no other benchmark holds this database, then hold it until this process exits, so two
    benches sharing a database never truncate each other's tables mid-run."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", [_BENCH_LOCK_KEY]).fetchone()[0]:
        print("another benchmark is using this database; waiting for it to finish ...", flush=True)
        conn.execute("SELECT pg_advisory_lock(%s)", [_BENCH_LOCK_KEY])
    _held.append(conn)


def truncate(*models: type) -> None:
    """Empty the tables of `models` (fast, resets nothing else). Call between benchmark runs."""
    from django.db import connection

    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}")


def truncate_events() -> None:
    from scheduling.models import LifecycleEvent

    truncate(LifecycleEvent)


def machine_facts() -> list[tuple[str, str]]:
    """(label, value) pairs describing where the numbers came from."""
    from django.db import connection

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(" on ")[0]
    import django

    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("cpu", cpu),
        ("cores", str(os.cpu_count())),
        ("load avg 1/5/15 min", " / ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("database", pg_version),
        ("python / django", f"{platform.python_version()} / {django.get_version()}"),
    ]


def format_table(headers: list[str], rows: list[list[object]]) -> str:
    """Plain-text table; numeric columns right-aligned, text columns left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = re.compile(r"^[-+]?[\d,.]+$|^-$")
    left = [not all(numeric.match(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(row, widths, left, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])
