"""Cheaper calendar entry inserts (issue 10): no foreign-key constraint and no single-column index on
`calendar_source` (see CalendarEntry), and on PostgreSQL no `varchar_pattern_ops` index on the primary key,
which Django makes for LIKE queries on a varchar key and nothing here runs (event ids are only compared
for equality)."""

from django.db import migrations, models
import django.db.models.deletion


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("calendar_projection", "CalendarEntry")._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [table, "%varchar_pattern_ops%"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("calendar_projection", "0004_dense_sources"),
    ]

    operations = [
        migrations.AlterField(
            model_name="calendarentry",
            name="calendar_source",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="entries",
                to="calendar_projection.calendarsource",
            ),
        ),
        migrations.RunPython(drop_like_index, migrations.RunPython.noop),
    ]
