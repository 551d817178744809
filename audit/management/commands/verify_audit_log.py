import sys

from django.core.management.base import BaseCommand

from audit import trail


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain and signed checkpoints. Exits 0 when they hold, "
        "otherwise 1 naming the first event that does not."
    )

    def handle(self, *args, **options):
        events, checkpoints, finding = trail.verify()
        if finding is not None:
            self.stderr.write(str(finding))
            sys.exit(1)
        self.stdout.write(f"{events} events and {checkpoints} signed checkpoints: the trail holds.")
