import json
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inventory.collect import describe, summary
from inventory.models import AwsAccount, CollectionRun
from inventory.tasks import runs_in_progress, start_collections


class Command(BaseCommand):
    help = (
        "Collect AWS accounts (all active live accounts, or those named), show progress and a "
        "summary. Exits non-zero if any account failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--account", action="append", default=[], metavar="ID", help="Repeat for several."
        )
        parser.add_argument("--wait", action="store_true", help="Wait until every run ends.")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
        parser.add_argument(
            "--timeout", type=float, default=6 * 3600, help="Seconds to wait at most."
        )

    def handle(self, *args, **options):
        accounts = self._accounts(options["account"])
        runs = start_collections(accounts)
        wait = options["wait"] or settings.CELERY_TASK_ALWAYS_EAGER
        deadline = time.monotonic() + options["timeout"]
        shown = {}
        while True:
            runs = runs_in_progress(runs)
            for run in runs:
                line = f"{run.account.account_id}: {run.phase or run.get_status_display()}"
                if run.progress_total:
                    line += f" {run.progress_done}/{run.progress_total}"
                if shown.get(run.pk) != line:
                    shown[run.pk] = line
                    self.stderr.write(line)
            if not wait or not any(run.is_running for run in runs):
                break
            if time.monotonic() > deadline:
                raise CommandError("timed out waiting for the collection to finish")
            time.sleep(1)

        summaries = [summary(run) for run in runs]
        if options["json"]:
            self.stdout.write(json.dumps({"accounts": summaries}, indent=2))
        else:
            for item in summaries:
                self.stdout.write(describe(item))
        if any(run.status == CollectionRun.Status.FAILED for run in runs):
            sys.exit(1)

    def _accounts(self, ids):
        if not ids:
            accounts = list(AwsAccount.objects.filter(active=True, mode=AwsAccount.Mode.LIVE))
            if not accounts:
                raise CommandError("no active live account to collect (add one with add_account)")
            return accounts
        accounts = {a.account_id: a for a in AwsAccount.objects.filter(account_id__in=ids)}
        for account_id in ids:
            if account_id not in accounts:
                raise CommandError(f"--account: no account {account_id} (add it with add_account)")
            if accounts[account_id].mode != AwsAccount.Mode.LIVE:
                raise CommandError(f"--account: {account_id} is import-only (use import_aws)")
        return [accounts[account_id] for account_id in dict.fromkeys(ids)]
