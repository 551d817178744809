"""Each campaign's items counted by reviewer, account and decision, kept in step with the items
from now on; the items of earlier launches are counted here, as `reviews.tallies.counted`
counts them (written out here, as a migration must not change with the code)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FIELDS = ("campaign_id", "reviewer_id", "account_id", "account_name", "decision", "defaulted")


def count_items(apps, schema_editor):
    ReviewItem = apps.get_model("reviews", "ReviewItem")
    Decision = apps.get_model("reviews", "Decision")
    ItemTally = apps.get_model("reviews", "ItemTally")
    defaulted = models.Exists(Decision.objects.filter(item=models.OuterRef("pk"), system=True))
    rows = (
        ReviewItem.objects.order_by()
        .values(*FIELDS[:-1])
        .annotate(defaulted=defaulted)
        .values_list(*FIELDS)
        .annotate(n=models.Count("pk"))
    )
    ItemTally.objects.bulk_create(
        (ItemTally(items=row[-1], **dict(zip(FIELDS, row[:-1], strict=True))) for row in rows),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0005_item_shown_sha256"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ItemTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("account_id", models.CharField(max_length=12)),
                ("account_name", models.CharField(max_length=200)),
                (
                    "decision",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("", "Undecided"),
                            ("keep", "Keep"),
                            ("revoke", "Revoke"),
                            ("reduce", "Reduce"),
                        ],
                        max_length=8,
                    ),
                ),
                ("defaulted", models.BooleanField(default=False)),
                ("items", models.IntegerField(default=0)),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tallies",
                        to="reviews.campaign",
                    ),
                ),
                (
                    "reviewer",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["reviewer", "campaign"], name="reviews_tally_reviewer")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("reviewer__isnull", False)),
                        fields=(
                            "campaign",
                            "reviewer",
                            "account_id",
                            "account_name",
                            "decision",
                            "defaulted",
                        ),
                        name="reviews_tally_unique",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("reviewer__isnull", True)),
                        fields=("campaign", "account_id", "account_name", "decision", "defaulted"),
                        name="reviews_tally_unique_unassigned",
                    ),
                ],
            },
        ),
        migrations.RunPython(count_items, migrations.RunPython.noop, elidable=True),
    ]
