from django.core.management.base import BaseCommand, CommandError

from config.models import ApiToken


class Command(BaseCommand):
    help = "Revoke an API token, named by the first characters of its key (as the admin lists it)."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The key's first 8 characters.")

    def handle(self, *args, prefix, **options):
        tokens = list(ApiToken.objects.filter(prefix=prefix, revoked_at__isnull=True))
        if not tokens:
            raise CommandError(f"No unrevoked token starts with {prefix!r}.")
        if len(tokens) > 1:
            raise CommandError(
                f"{len(tokens)} tokens start with {prefix!r}: revoke it in the admin."
            )
        tokens[0].revoke()
        self.stdout.write(f"Revoked {tokens[0]} of {tokens[0].user.get_username()}.")
