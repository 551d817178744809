"""Each decision keeps its item's campaign, so that a campaign's decisions (the pace of its
reviewers on the dashboard, the evidence) are read by campaign rather than by joining its
items to every decision ever made. Decisions made before it are given theirs."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def give_campaigns(apps, schema_editor):
    Decision = apps.get_model("reviews", "Decision")
    ReviewItem = apps.get_model("reviews", "ReviewItem")
    Decision.objects.update(
        campaign_id=Subquery(
            ReviewItem.objects.filter(pk=OuterRef("item_id")).values("campaign_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [("reviews", "0008_item_campaign_decision_statistics")]

    operations = [
        migrations.AddField(
            model_name="decision",
            name="campaign",
            field=models.ForeignKey(
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="decisions",
                to="reviews.campaign",
            ),
        ),
        migrations.RunPython(give_campaigns, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="decision",
            name="campaign",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="decisions",
                to="reviews.campaign",
            ),
        ),
    ]
