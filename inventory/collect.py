"""Live collection of one account: AWS answers in, a complete run (or a failed one) out.

A run reads GetAccountAuthorizationDetails page by page, the credential report, and one Access
Advisor job per principal, then saves everything in one transaction (`inventory.store`). Access
Advisor jobs go through a small pipeline: a bounded number of threads per account make the calls,
while jobs wait for AWS on a timer instead of holding a thread, so the account's request rate,
not the waiting, sets the pace.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from inventory import aws
from inventory.archive import Recorder
from inventory.models import AwsAccount, CollectionRun
from inventory.parse import ParseError, SnapshotBuilder
from inventory.store import RunNotRunning, fail_run, save_snapshot

logger = logging.getLogger(__name__)

# Rows per GetAccountAuthorizationDetails page; AWS's maximum.
AUTHORIZATION_DETAILS_PAGE_SIZE = 1000


class CollectionError(Exception):
    """A reason to fail a run that is not an AWS error (wrong account, bad answer)."""


@dataclass
class Outcome:
    """What Access Advisor said of one principal."""

    answer: dict | None = None
    error: aws.AwsError | None = None


@dataclass(order=True)
class _Step:
    ready_at: float
    seq: int
    arn: str = field(compare=False)
    job_id: str | None = field(default=None, compare=False)
    polls: int = field(default=0, compare=False)
    started_at: float = field(default=0.0, compare=False)


class AccessAdvisor:
    """Runs one Access Advisor job per principal with `concurrency` threads and at most `window`
    jobs waiting at AWS at once; polls back off from `poll` to `poll_max` seconds."""

    def __init__(
        self,
        iam: aws.IamReader,
        *,
        concurrency: int,
        window: int,
        poll: float,
        poll_max: float,
        timeout: float,
    ):
        self.iam = iam
        self.concurrency = concurrency
        self.window = window
        self.poll = poll
        self.poll_max = poll_max
        self.timeout = timeout
        self._ready = threading.Condition()
        self._steps: list[_Step] = []
        self._seq = itertools.count()
        self._waiting: list[str] = []
        self._open = 0
        self.results: dict[str, Outcome] = {}
        self._total = 0
        self._stopped = False

    def run(self, arns: list[str], on_progress=None, every: float = 1.0) -> dict[str, Outcome]:
        """Every principal's outcome. `on_progress(done)` runs on the calling thread each
        `every` seconds; it may raise to stop the jobs (the threads then end promptly)."""
        self._total = len(arns)
        self._waiting = list(reversed(arns))
        with self._ready:
            self._admit()
        threads = [
            threading.Thread(target=self._work, name=f"access-advisor-{i}", daemon=True)
            for i in range(min(self.concurrency, max(1, len(arns))))
        ]
        for thread in threads:
            thread.start()
        try:
            while alive := [thread for thread in threads if thread.is_alive()]:
                alive[0].join(every)
                if on_progress is not None:
                    on_progress(len(self.results))
        finally:
            with self._ready:
                self._stopped = True
                self._ready.notify_all()
            for thread in threads:
                thread.join()
        return self.results

    def _admit(self) -> None:
        """Queue new jobs while fewer than `window` are open (called holding the lock)."""
        while self._waiting and self._open < self.window:
            self._open += 1
            heapq.heappush(self._steps, _Step(0.0, next(self._seq), self._waiting.pop()))

    def _next(self) -> _Step | None:
        with self._ready:
            while not self._stopped and len(self.results) < self._total:
                now = time.monotonic()
                if self._steps and self._steps[0].ready_at <= now:
                    return heapq.heappop(self._steps)
                self._ready.wait(self._steps[0].ready_at - now if self._steps else None)
            return None

    def _finish(self, step: _Step, outcome: Outcome) -> None:
        with self._ready:
            self.results[step.arn] = outcome
            self._open -= 1
            self._admit()
            self._ready.notify_all()

    def _again(self, step: _Step, delay: float) -> None:
        with self._ready:
            step.ready_at = time.monotonic() + delay
            step.seq = next(self._seq)
            heapq.heappush(self._steps, step)
            self._ready.notify()

    def _work(self) -> None:
        while (step := self._next()) is not None:
            try:
                self._step(step)
            except aws.AwsError as exc:
                self._finish(step, Outcome(error=exc))
            except Exception as exc:
                logger.exception("Access Advisor step for %s failed", step.arn)
                self._finish(
                    step, Outcome(error=aws.AwsError("AccessAdvisor", "Internal", str(exc)))
                )

    def _step(self, step: _Step) -> None:
        if step.job_id is None:
            step.job_id = self.iam.start_service_last_accessed(step.arn)
            step.started_at = time.monotonic()
            self._again(step, self.poll)
            return
        try:
            status, answer = self.iam.service_last_accessed(step.job_id)
        except aws.NoSuchEntity as exc:
            # Only starting a job says whether the principal exists; a job AWS no longer knows
            # (expired, lost) says nothing of it, and must not mark it removed.
            raise aws.AwsError(exc.operation, "JobNotFound", exc.message, exc.request_id) from exc
        step.polls += 1
        if status == "COMPLETED":
            self._finish(step, Outcome(answer=answer))
        elif status == "FAILED":
            error = (answer or {}).get("Error") or {}
            self._finish(
                step,
                Outcome(
                    error=aws.AwsError(
                        "GetServiceLastAccessedDetails",
                        error.get("Code", "JobFailed"),
                        error.get("Message", "the Access Advisor job failed"),
                    )
                ),
            )
        elif time.monotonic() - step.started_at > self.timeout:
            self._finish(
                step,
                Outcome(
                    error=aws.AwsError(
                        "GetServiceLastAccessedDetails",
                        "Timeout",
                        f"job {step.job_id} not complete after {self.timeout:.0f} s",
                    )
                ),
            )
        else:
            self._again(step, min(self.poll * 2 ** (step.polls - 1), self.poll_max))


class _Progress:
    """Writes a run's phase and progress, at most every second, and notices a lost run."""

    def __init__(self, run: CollectionRun):
        self.run = run
        self._last = 0.0

    def update(self, *, force: bool = False, **values) -> None:
        now = time.monotonic()
        if not force and now - self._last < 1.0:
            return
        self._last = now
        found = CollectionRun.objects.filter(
            pk=self.run.pk, status=CollectionRun.Status.RUNNING
        ).update(heartbeat_at=timezone.now(), **values)
        if found != 1:
            raise RunNotRunning(f"run {self.run.uuid} is no longer running")

    def phase(self, text: str, **values) -> None:
        # Stored in English, marked with gettext_noop: the page translates it for its reader.
        self.update(force=True, phase=text, **values)


def claim(run_id: int) -> CollectionRun | None:
    """Take a running run whose worker is not known to be alive; None if there is none."""
    stale = timezone.now() - timezone.timedelta(minutes=settings.COLLECTION_STALE_MINUTES)
    taken = (
        CollectionRun.objects.filter(pk=run_id, status=CollectionRun.Status.RUNNING)
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale))
        .update(heartbeat_at=timezone.now(), attempts=models.F("attempts") + 1)
    )
    if taken != 1:
        return None
    return CollectionRun.objects.select_related("account").get(pk=run_id)


def collect_run(run_id: int) -> CollectionRun | None:
    """Collect the run's account live. Safe to call again for the same run: a run that is
    finished, or that another worker is working on, is left alone."""
    run = claim(run_id)
    if run is None:
        return None
    account = run.account
    recorder = Recorder()
    calls = aws.CallLog()
    progress = _Progress(run)
    errors: list[dict] = []
    run.endpoint = settings.AWS_ENDPOINT_URL
    try:
        if account.mode != AwsAccount.Mode.LIVE:
            raise CollectionError(f"account {account.account_id} is import-only")
        progress.phase(gettext_noop("Connecting"), endpoint=run.endpoint)
        session = aws.AwsSession(
            account.role_arn, account.external_id, calls=calls, recorder=recorder
        )
        identity = session.caller_identity()
        run.caller_arn = identity.arn
        if not account.role_arn and identity.account_id != account.account_id:
            raise CollectionError(
                f"the credentials belong to account {identity.account_id}, not to "
                f"{account.account_id}: set a role to assume for this account"
            )
        iam = session.iam()
        builder = SnapshotBuilder(account.account_id)
        progress.phase(gettext_noop("Reading authorization details"), caller_arn=run.caller_arn)
        for number, page in enumerate(
            iam.authorization_details(AUTHORIZATION_DETAILS_PAGE_SIZE), start=1
        ):
            builder.add_authorization_details(page, f"GetAccountAuthorizationDetails page {number}")
        progress.phase(gettext_noop("Reading the credential report"))
        builder.add_credential_report(
            iam.credential_report(settings.CREDENTIAL_REPORT_TIMEOUT_SECONDS),
            "GetCredentialReport",
        )
        arns = builder.principal_arns()
        progress.phase(
            gettext_noop("Reading Access Advisor"), progress_total=len(arns), progress_done=0
        )
        advisor = AccessAdvisor(
            iam,
            concurrency=settings.COLLECT_CONCURRENCY,
            window=settings.ACCESS_ADVISOR_JOB_WINDOW,
            poll=settings.ACCESS_ADVISOR_POLL_SECONDS,
            poll_max=settings.ACCESS_ADVISOR_POLL_MAX_SECONDS,
            timeout=settings.ACCESS_ADVISOR_TIMEOUT_SECONDS,
        )
        outcomes = advisor.run(arns, lambda done: progress.update(progress_done=done))
        fatal = False
        for arn in arns:
            outcome = outcomes[arn]
            if outcome.answer is not None:
                builder.add_service_last_accessed(arn, outcome.answer, f"Access Advisor {arn}")
                continue
            errors.append({"arn": arn, **outcome.error.as_dict()})
            if isinstance(outcome.error, aws.NoSuchEntity):
                builder.forget_principal(arn)  # deleted while we read: gone, not an error
            else:
                fatal = True
        if fatal:
            raise CollectionError(
                f"Access Advisor failed for {sum(1 for e in errors if e['code'] != 'NoSuchEntity')}"
                " principal(s); the previous complete run stays current"
            )
        progress.phase(gettext_noop("Saving"))
        snapshot = builder.build()
        run.api_calls, run.retries = calls.calls(), calls.retries
        run.errors = errors
        save_snapshot(run, snapshot, recorder)
    except RunNotRunning:
        logger.warning("Run %s was finished elsewhere; its results are dropped", run.uuid)
        return None
    except (aws.AwsError, ParseError, CollectionError) as exc:
        logger.warning("Collection of %s failed: %s", account.account_id, exc)
        run.api_calls, run.retries = calls.calls(), calls.retries
        errors.append(_error_dict(exc))
        fail_run(run, errors, recorder)
    except Exception as exc:
        logger.exception("Collection of %s failed", account.account_id)
        run.api_calls, run.retries = calls.calls(), calls.retries
        errors.append({"code": "Internal", "message": f"{type(exc).__name__}: {exc}"})
        fail_run(run, errors, recorder)
        raise
    return run


def _error_dict(exc: Exception) -> dict:
    if isinstance(exc, aws.AwsError):
        return exc.as_dict()
    if isinstance(exc, ParseError):
        return {"code": "BadAnswer", "message": str(exc)}
    return {"code": "CollectionError", "message": str(exc)}


def stale_runs():
    """Running runs whose worker went silent (or that never started) for the stale time."""
    stale = timezone.now() - timezone.timedelta(minutes=settings.COLLECTION_STALE_MINUTES)
    return CollectionRun.objects.filter(status=CollectionRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )


def summary(run: CollectionRun) -> dict:
    """The summary object that `collect --json` and `import_aws --json` print per account."""
    counts = run.counts or {}
    return {
        "account_id": run.account.account_id,
        "run": str(run.uuid),
        "source": run.source,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        **{
            name: counts.get(name, 0)
            for name in (
                "users",
                "groups",
                "roles",
                "policies",
                "rights",
                "service_usage",
                "action_usage",
            )
        },
        "api_calls": run.api_calls,
        "retried_attempts": run.retries,
        "errors": run.errors,
        "warnings": run.warnings,
    }


def describe(item: dict) -> str:
    """The summary of one run as lines of text."""
    lines = [
        f"{item['account_id']}: {item['status']}",
        "  users {users}, groups {groups}, roles {roles}, policies {policies}, rights {rights}, "
        "service usage rows {service_usage}, action usage rows {action_usage}".format(**item),
    ]
    if item["api_calls"]:
        calls = ", ".join(f"{name} {count}" for name, count in item["api_calls"].items())
        lines.append(f"  API calls: {calls}")
    lines += [
        f"  error: {error.get('arn', '')} {error['message']}".rstrip() for error in item["errors"]
    ]
    lines += [f"  warning: {warning}" for warning in item["warnings"]]
    return "\n".join(lines)
