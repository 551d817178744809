from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.models import ApiToken


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print its key, once: Attest keeps only a hash of it. "
        "The token acts with the user's roles."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="", help="What the token is for (default: created from the shell)."
        )

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}: create the user first.")
        if not user.is_active:
            raise CommandError(f"{username!r} is deactivated: its tokens would not sign in.")
        name = name.strip() or "manage.py create_api_token"
        if len(name) > ApiToken._meta.get_field("name").max_length:
            raise CommandError("--name: at most 100 characters.")
        _token, key = ApiToken.issue(user, name)
        self.stdout.write(key)
