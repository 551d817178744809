from django.core.management.base import BaseCommand

from reviews import tallies
from reviews.models import Campaign


class Command(BaseCommand):
    help = (
        "Count every campaign's items again into the tallies its progress is read from: after "
        "items were changed by hand in the database, or restored from a backup."
    )

    def handle(self, *args, **options):
        wrong = [
            campaign for campaign in Campaign.objects.order_by("pk") if tallies.recount(campaign.pk)
        ]
        for campaign in wrong:
            self.stdout.write(f"Recounted {campaign} ({campaign.uuid})")
        self.stdout.write(f"{len(wrong)} of {Campaign.objects.count()} campaigns recounted")
