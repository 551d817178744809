"""The database refuses UPDATE and DELETE on the audit tables, whoever asks."""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditcheckpoint")

POSTGRESQL = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
""" + "".join(
    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();\n"
    for table in TABLES
)
SQLITE = [
    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: {op} on {table} refused'); END;"
    for table in TABLES
    for op in ("UPDATE", "DELETE")
]


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"no append-only triggers for {schema_editor.connection.vendor}")


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
    else:
        for statement in SQLITE:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_trail")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
