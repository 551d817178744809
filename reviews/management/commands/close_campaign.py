import uuid

from django.core.management.base import BaseCommand, CommandError

from reviews.decide import Refused, close
from reviews.models import Campaign


class Command(BaseCommand):
    help = "Close a campaign, giving its unanswered items the default outcome."

    def add_arguments(self, parser):
        parser.add_argument("id", help="The campaign's id, as launch_campaign printed it.")

    def handle(self, *args, **options):
        try:
            campaign = Campaign.objects.get(uuid=uuid.UUID(options["id"]))
        except (ValueError, Campaign.DoesNotExist):
            raise CommandError(f"no campaign {options['id']}") from None
        try:
            applied = close(campaign)
        except Refused as exc:
            raise CommandError(f"{campaign}: {exc}") from None
        summary = ", ".join(f"{count} {decision}" for decision, count in sorted(applied.items()))
        self.stdout.write(f"Closed {campaign}; default outcome: {summary or 'no open item'}")
