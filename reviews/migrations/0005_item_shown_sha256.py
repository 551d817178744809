"""Each item keeps the digest of what its reviewer is shown, worked out at launch; the items of
earlier launches get theirs here, from their frozen facts, as `reviews.models.shown_digest`
works it out (written out here, as a migration must not change with the code)."""

import hashlib
import json

from django.db import migrations, models

BATCH = 2000


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fill_digests(apps, schema_editor):
    ReviewItem = apps.get_model("reviews", "ReviewItem")
    items = ReviewItem.objects.filter(shown_sha256="").order_by("pk")
    fields = ("pk", "principal_arn", "right_kind", "right_key", "recommendation", "facts")
    batch = []
    for item in items.only(*fields).iterator(chunk_size=BATCH):
        shown = {
            "facts": item.facts,
            "principal": item.principal_arn,
            "recommendation": item.recommendation,
            "right": [item.right_kind, item.right_key],
        }
        item.shown_sha256 = hashlib.sha256(_canonical(shown).encode()).hexdigest()
        batch.append(item)
        if len(batch) == BATCH:
            ReviewItem.objects.bulk_update(batch, ["shown_sha256"])
            batch = []
    ReviewItem.objects.bulk_update(batch, ["shown_sha256"])


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0004_queue_order_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewitem",
            name="shown_sha256",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop, elidable=True),
    ]
