"""PostgreSQL told how a campaign's items and their decisions go together.

The planner takes a campaign's items and their decisions as independent. Once earlier campaigns
are closed with their items revoked and reduced, it expects an open campaign to hold as many
revoked items as their average and reads every item of every campaign to count its unsettled
revocations (the remediations page and sign-off): 94 ms with one closed campaign of 100,000
items beside it, growing with each. With the combinations counted (extended statistics, most
common values), it reads the campaign's own from its index: 0.07 ms. SQLite, the demo's
database, has no such statistics and needs none at its size.
"""

from django.db import migrations

CREATE = (
    "CREATE STATISTICS IF NOT EXISTS reviews_item_campaign_decision (mcv) "
    "ON campaign_id, decision FROM reviews_reviewitem"
)
DROP = "DROP STATISTICS IF EXISTS reviews_item_campaign_decision"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)
        schema_editor.execute("ANALYZE reviews_reviewitem")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("reviews", "0007_campaign_closing")]

    operations = [migrations.RunPython(create, drop)]
