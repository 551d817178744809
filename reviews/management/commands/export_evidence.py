import os
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviews import evidence
from reviews.models import Campaign


class Command(BaseCommand):
    help = (
        "Write a campaign's evidence package (a ZIP with a signed SHA-256 manifest) to a file. "
        "Until the campaign is signed off, the package is marked interim."
    )

    def add_arguments(self, parser):
        parser.add_argument("id", help="The campaign's id, as launch_campaign printed it.")
        parser.add_argument("--output", required=True, help="The ZIP file to write.")
        parser.add_argument(
            "--language",
            choices=[code for code, _ in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="The language of README.md, VERIFY.md and summary.html; every other file is the "
            "same in every language. Default: LANGUAGE_CODE (%(default)s).",
        )

    def handle(self, *args, **options):
        try:
            campaign = Campaign.objects.get(uuid=uuid.UUID(options["id"]))
        except (ValueError, Campaign.DoesNotExist):
            raise CommandError(f"no campaign {options['id']}") from None
        if campaign.state == Campaign.State.DRAFT:
            raise CommandError(f"{campaign} is a draft: its population is frozen at launch")
        if not campaign.is_launched:
            raise CommandError(f"{campaign} is still launching: export it once it is launched")
        output = Path(options["output"])
        # Written beside the target and renamed into place: a failed export leaves no file, and
        # a reader never sees half a package under the final name.
        try:
            handle, partial = tempfile.mkstemp(
                prefix=".attest-evidence-", suffix=".partial", dir=output.parent
            )
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(handle, "w+b") as stream:
                manifest = evidence.build(campaign, stream, language=options["language"])
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(partial, output)
        except OSError as exc:
            Path(partial).unlink(missing_ok=True)
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        status = "interim (not signed off)" if manifest["interim"] else "final"
        self.stdout.write(
            f"Wrote {output}: evidence of {campaign}, {status}, {len(manifest['files'])} files "
            "and manifest.json."
        )
