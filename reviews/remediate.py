"""Carrying out revoke and reduce decisions in AWS: plan, apply, verify, roll back.

A remediation moves through a database state machine. Planning happens in the transaction that
makes it due (the campaign's close, a decision, the manager's approval), and its task is queued
once that commits; a sweeper queues again whatever was committed but never ran or whose worker
went silent. A task claims its remediation with a conditional UPDATE, so two deliveries never
work on one remediation at once, and each step commits on its own: the state before is saved
before anything changes, and every call is written down as it is made. The calls still needed
are derived from what AWS holds now (see `reviews.rights`), so a task that runs again after a
crash makes only the calls still missing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from operator import attrgetter

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.trail import record
from config import bulk
from inventory.aws import AwsError, AwsSession, NoSuchEntity, request_id
from inventory.models import AwsAccount, PolicyVersion, Right
from reviews import rights
from reviews.models import (
    Campaign,
    Decision,
    Remediation,
    RemediationStart,
    ReviewItem,
    SignOff,
)
from reviews.reduce import ReductionError, reduce_document

logger = logging.getLogger(__name__)

State = Remediation.State
ACTIONS = (ReviewItem.Decision.REVOKE, ReviewItem.Decision.REDUCE)
# A remediation whose task failed this often for reasons other than AWS's answer is given up.
MAX_ATTEMPTS = 5


class Refused(Exception):
    """A change to a remediation that is not made, and why, in words the user reads."""


class Throttled(Exception):
    """AWS kept throttling, or could not be reached, after botocore's own retries: the task
    tries again later."""

    def __init__(self, error: AwsError):
        self.error = error
        super().__init__(str(error))


# Planning --------------------------------------------------------------------------------------


def plan_campaign(campaign: Campaign, by=None) -> dict[str, int]:
    """Plan a remediation for every revoke and reduce decision of the campaign that has none.

    Called inside the transaction that closes the campaign; tasks are queued once it commits.
    Returns how many remediations were planned in which state.
    """
    approved = campaign.rules.get("remediation_start", RemediationStart.AT_CLOSE) != (
        RemediationStart.AFTER_APPROVAL
    )
    live = Remediation.objects.filter(item=OuterRef("pk")).exclude(state=State.CANCELLED)
    due = campaign.items.filter(decision__in=ACTIONS).exclude(Exists(live))
    # A few queries for the whole campaign rather than a few per item, reading no more of an
    # item than its remediation needs: this runs inside the transaction that closes the
    # campaign. A revocation needs the principal's path of what the reviewer was shown, not
    # the kilobytes of the rest; a reduction needs the policies reviewed, each version read
    # once however many items share it.
    path = KeyTextTransform("path", KeyTransform("principal", "facts"))
    items = sorted(
        [
            *due.filter(decision=ReviewItem.Decision.REVOKE)
            .defer("facts")
            .annotate(principal_path=path),
            *due.filter(decision=ReviewItem.Decision.REDUCE)
            .annotate(principal_path=path)
            .select_related("right__group")
            .prefetch_related("policy_version"),
        ],
        key=attrgetter("pk"),
    )
    accounts = AwsAccount.objects.in_bulk(
        {item.account_id for item in items}, field_name="account_id"
    )
    latest: dict[int, tuple[int, list]] = {}
    for item_id, decision_id, keep in (
        Decision.objects.filter(item__in=bulk.id_array([item.pk for item in items]))
        .order_by("item", "-decided_at", "-pk")
        .values_list("item", "pk", "keep")
    ):
        latest.setdefault(item_id, (decision_id, keep))
    dry_run = _dry_run(campaign)
    made = [
        _new(
            item,
            approved=approved,
            account=accounts[item.account_id],
            decision=latest[item.pk],
            dry_run=dry_run,
            path=item.principal_path or "",
        )
        for item in items
    ]
    bulk.insert(Remediation, made, ids=True)
    counts: dict[str, int] = {}
    for remediation in made:
        counts[remediation.state] = counts.get(remediation.state, 0) + 1
    if made:
        record(
            "remediation.planned",
            campaign,
            actor=by,
            actor_name="" if by else "system",
            after={"counts": counts, "approved": approved, "dry_run": _dry_run(campaign)},
        )
        _queue_when_committed([r.pk for r in made if r.state == State.PLANNED and approved])
    return counts


def plan_item(item: ReviewItem, by) -> Remediation | None:
    """Plan the remediation of one decision (campaigns that remediate after each decision).

    Called inside the decision's transaction; a planned remediation of an earlier decision that
    has not started is cancelled first.
    """
    item = ReviewItem.objects.select_related(
        "campaign", "right__policy", "right__group", "policy_version"
    ).get(pk=item.pk)
    cancel_for_item(item, by)
    if item.decision not in ACTIONS:
        return None
    remediation = _new(item, approved=True)
    remediation.save()
    record(
        "remediation.planned",
        remediation,
        actor=by,
        after={"state": remediation.state, "dry_run": remediation.dry_run},
    )
    if remediation.state == State.PLANNED:
        _queue_when_committed([remediation.pk])
    return remediation


def expire_kept(today=None) -> int:
    """Revoke what was kept until a day now past, unless a later campaign kept it again.

    Beat runs this daily. The revocation is a remediation of the item that kept the right,
    carried out as its campaign's rules say; returns how many were planned.
    """
    today = today or timezone.localdate()
    live = Remediation.objects.filter(item=OuterRef("pk")).exclude(state=State.CANCELLED)
    kept_again = ReviewItem.objects.filter(
        right=OuterRef("right"),
        campaign__launched_at__gt=OuterRef("campaign__launched_at"),
        decision=ReviewItem.Decision.KEEP,
    ).filter(Q(keep_until__isnull=True) | Q(keep_until__gt=today))
    expired = (
        ReviewItem.objects.filter(
            decision=ReviewItem.Decision.KEEP,
            keep_until__lte=today,
            campaign__state__in=[Campaign.State.CLOSED, Campaign.State.SIGNED_OFF],
            right__removed_run__isnull=True,
        )
        .exclude(Exists(live))
        .exclude(Exists(kept_again))
        .select_related("campaign", "right__policy", "right__group", "policy_version")
        .order_by("pk")
    )
    planned = 0
    for item in expired:
        approved = item.campaign.rules.get("remediation_start") != RemediationStart.AFTER_APPROVAL
        with transaction.atomic():
            remediation = _new(item, approved=approved, action=ReviewItem.Decision.REVOKE)
            if remediation.state == State.PLANNED:
                remediation.note = _("Kept until %(day)s; no later campaign kept it again.") % {
                    "day": item.keep_until.isoformat()
                }
            remediation.save()
            record(
                "remediation.planned",
                remediation,
                actor_name="system",
                after={
                    "state": remediation.state,
                    "reason": "keep_until",
                    "keep_until": item.keep_until,
                },
            )
            if remediation.state == State.PLANNED and approved:
                _queue_when_committed([remediation.pk])
        planned += 1
    return planned


def cancel_for_item(item: ReviewItem, by) -> None:
    """Before a decision changes: cancel its remediation if nothing was done yet, or refuse."""
    current = (
        Remediation.objects.filter(item=item)
        .exclude(state__in=[State.CANCELLED, State.ROLLED_BACK])
        .first()
    )
    if current is None:
        return
    cancelled = Remediation.objects.filter(
        pk=current.pk, state__in=[State.PLANNED, State.SIMULATED, State.MANUAL]
    ).update(state=State.CANCELLED, claimed_by="")
    if not cancelled:
        raise Refused(
            _(
                "This decision is already being carried out in AWS (%(state)s): ask the campaign "
                "manager to roll it back before changing it."
            )
            % {"state": current.get_state_display()}
        )
    record("remediation.cancelled", current, actor=by, before={"state": current.state})


def _dry_run(campaign: Campaign) -> bool:
    return bool(campaign.rules.get("remediation_dry_run", False))


def _new(
    item: ReviewItem,
    *,
    approved: bool,
    account: AwsAccount | None = None,
    decision: tuple[int, list] | None = None,
    action: str = "",
    dry_run: bool | None = None,
    path: str | None = None,
) -> Remediation:
    """The remediation of the item's latest decision, unsaved. A campaign's close gives what it
    read for all its items at once: the account, the decision (its id and what it kept),
    whether the campaign only simulates, and the principal's path."""
    action = action or item.decision
    if decision is None:
        latest = item.decisions.order_by("-decided_at", "-pk").first()
        decision = (latest.pk, latest.keep)
    decision_id, keep = decision
    account = account or AwsAccount.objects.get(account_id=item.account_id)
    if path is None:
        path = (item.facts.get("principal") or {}).get("path") or ""
    now = timezone.now()
    # Made without Model.__init__, whose checks of each field cost more than the rest of a
    # remediation when a campaign of 100,000 items closes.
    remediation = bulk.new(
        Remediation,
        {
            "item_id": item.pk,
            "campaign_id": item.campaign_id,
            "account_id": account.pk,
            "decision_id": decision_id,
            "action": action,
            "dry_run": _dry_run(item.campaign) if dry_run is None else dry_run,
            "planned_at": now,
            "approved_at": now if approved else None,
            "approved_by_name": "system" if approved else "",
        },
        related={"item": item, "account": account},
    )
    if action == ReviewItem.Decision.REDUCE:
        try:
            remediation.replacement = replacement_document(item, keep)
            remediation.replacement_name = _replacement_name(item, remediation)
        except ReductionError as exc:
            remediation.state = State.MANUAL
            remediation.note = str(exc)
            return remediation
    if (item.right_kind, action) not in rights.HANDLERS:
        remediation.state = State.MANUAL
        remediation.note = _("Attest does not %(action)s a %(kind)s by itself.") % {
            "action": ReviewItem.Decision(action).label.lower(),
            "kind": item.get_right_kind_display().lower(),
        }
    elif managed_by_aws := _managed_by_aws(path):
        remediation.state = State.MANUAL
        remediation.note = managed_by_aws
    elif account.mode == AwsAccount.Mode.IMPORT:
        remediation.state = State.MANUAL
        remediation.note = _(
            "The account is import-only: run the plan's commands, then confirm with a ticket."
        )
    return remediation


def _managed_by_aws(path: str) -> str:
    """Why IAM will refuse to change the principal at `path`, if it is one AWS manages for a
    service."""
    if path.startswith("/aws-reserved/sso.amazonaws.com/"):
        return _(
            "IAM Identity Center owns this role: change the permission set it comes from "
            "there, then confirm here with the change's ticket."
        )
    if path.startswith("/aws-service-role/"):
        return _(
            "This is a service-linked role, whose policies only its AWS service may change: "
            "remove the service's use of it instead, then confirm here with a ticket."
        )
    return ""


def reviewed_documents(item: ReviewItem) -> list[dict]:
    """The policy documents behind the item as the reviewer saw them."""
    if item.right_kind == Right.Kind.INLINE_POLICY:
        return [item.right.document] if item.right.document else []
    if item.right_kind == Right.Kind.MANAGED_POLICY:
        return [item.policy_version.document] if item.policy_version_id else []
    if item.right_kind == Right.Kind.GROUP_MEMBERSHIP:
        refs = item.facts.get("documents", [])
        versions = PolicyVersion.objects.in_bulk([r["version"] for r in refs if "version" in r])
        inline = Right.objects.in_bulk([r["inline_right"] for r in refs if "inline_right" in r])
        documents = [versions[r["version"]].document for r in refs if r.get("version") in versions]
        documents += [
            inline[r["inline_right"]].document for r in refs if r.get("inline_right") in inline
        ]
        return documents
    return []


def replacement_document(item: ReviewItem, keep: list[str]) -> dict:
    """The policy that replaces the item's right, allowing only what the reviewer kept."""
    documents = reviewed_documents(item)
    if not documents:
        raise ReductionError(_("The policy document reviewed is not known."))
    if len(documents) == 1:
        return reduce_document(documents[0], keep)
    statements = []
    for document in documents:
        try:
            statements += reduce_document(document, keep)["Statement"]
        except ReductionError:
            continue  # this policy of the group grants none of what was kept
    if not statements:
        raise ReductionError(
            _("None of the group's policies allows %(keep)s.") % {"keep": ", ".join(keep)}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _replacement_name(item: ReviewItem, remediation: Remediation) -> str:
    base = item.right.group.name if item.right.group_id else item.right_key.rsplit("/", 1)[-1]
    name = f"attest-{item.principal_name}-{base}"[:110]
    return f"{name}-{remediation.uuid.hex[:8]}"


def target(remediation: Remediation) -> rights.Target:
    item = remediation.item
    right = item.right
    return rights.Target(
        principal_kind=item.principal_kind,
        principal_name=item.principal_name,
        principal_arn=item.principal_arn,
        right_kind=item.right_kind,
        right_key=item.right_key,
        action=remediation.action,
        policy_arn=right.policy.arn if right.policy_id else None,
        group=right.group.name if right.group_id else None,
        key_created=right.created_at.replace(microsecond=0) if right.created_at else None,
        reviewed_document=(reviewed_documents(item) or [None])[0],
        replacement=remediation.replacement,
        replacement_name=remediation.replacement_name,
    )


# Queueing --------------------------------------------------------------------------------------


def _queue_when_committed(pks: list[int], *, rollback: bool = False) -> None:
    if not pks:
        return

    def queue():
        from reviews import tasks  # the tasks module imports this one

        task = tasks.roll_back_remediation if rollback else tasks.carry_out_remediation
        for pk in pks:
            task.delay(pk)

    transaction.on_commit(queue)


def approve(campaign: Campaign, by) -> int:
    """The manager's go for remediations that wait for approval (after a sign-off, only those
    it did not cover: rights kept until a day now past)."""
    with transaction.atomic():
        waiting = Remediation.objects.filter(
            campaign=campaign, state=State.PLANNED, approved_at__isnull=True, excepted_at=None
        )
        signed_at = _signed_at(campaign)
        if signed_at is not None:
            waiting = waiting.filter(planned_at__gt=signed_at)
        waiting = list(waiting.values_list("pk", flat=True))
        if not waiting:
            raise Refused(
                _("The campaign is signed off: nothing it covered is carried out any more.")
                if signed_at is not None
                else _("No remediation of this campaign waits for approval.")
            )
        now = timezone.now()
        # claimed_at: queued now, so the sweeper waits a lease before queueing them again.
        Remediation.objects.filter(pk__in=waiting).update(
            approved_at=now, approved_by_name=by.get_username(), claimed_at=now
        )
        record("remediation.approved", campaign, actor=by, after={"count": len(waiting)})
        _queue_when_committed(waiting)
    return len(waiting)


def _signed_at(campaign: Campaign):
    if campaign.state != Campaign.State.SIGNED_OFF:
        return None
    return SignOff.objects.filter(campaign=campaign).values_list("signed_at", flat=True).first()


def attested(remediation: Remediation) -> bool:
    """Whether its campaign's sign-off covered the remediation, which is then final but for a
    rollback. One planned later (a right kept until a day now past) is not covered."""
    signed_at = _signed_at(remediation.campaign)
    return signed_at is not None and remediation.planned_at <= signed_at


def stale(now=None) -> tuple[list[int], list[int]]:
    """What the sweeper queues again: remediations and rollbacks committed but never run, and
    those whose worker went silent for longer than the lease."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS)
    waiting = Q(claimed_at__isnull=True, planned_at__lt=silent) | Q(claimed_at__lt=silent)
    forward = Remediation.objects.filter(
        Q(state=State.PLANNED, approved_at__isnull=False) | Q(state=State.RUNNING)
    ).filter(waiting)
    backward = Remediation.objects.filter(
        state__in=[State.ROLLBACK_PLANNED, State.ROLLING_BACK]
    ).filter(waiting)
    return (
        list(forward.values_list("pk", flat=True)),
        list(backward.values_list("pk", flat=True)),
    )


# Running ---------------------------------------------------------------------------------------


def _claim(pk: int, worker: str, ready: str, working: str) -> Remediation | None:
    now = timezone.now()
    silent = now - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS)
    ready_q = Q(state=ready)
    if ready == State.PLANNED:
        ready_q &= Q(approved_at__isnull=False)
    # The same delivery coming back (a retry, or redelivery after its worker died) may take its
    # own claim again; another delivery waits for the lease to run out.
    working_q = Q(state=working) & (Q(claimed_by=worker) | Q(claimed_at__lt=silent))
    claimed = Remediation.objects.filter(Q(pk=pk) & (ready_q | working_q)).update(
        state=working, claimed_by=worker, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return Remediation.objects.select_related(
        "item__right__policy", "item__right__group", "item__policy_version", "account", "campaign"
    ).get(pk=pk)


def _session(account: AwsAccount) -> AwsSession:
    return AwsSession(account.remediation_role_arn or account.role_arn, account.external_id)


def _write(remediation: Remediation, **fields) -> None:
    """Commit a step's result at once (outside any transaction: a crash keeps what was done)."""
    for name, value in fields.items():
        setattr(remediation, name, value)
    Remediation.objects.filter(pk=remediation.pk).update(claimed_at=timezone.now(), **fields)


def _move(remediation: Remediation, to: str, action: str, *, actor=None, after=None, **fields):
    """Change state, with its audit event, in one transaction."""
    before = remediation.state
    with transaction.atomic():
        _write(remediation, state=to, **fields)
        record(
            f"remediation.{action}",
            remediation,
            actor=actor,
            actor_name="" if actor else "system",
            before={"state": before},
            after={"state": to, **(after or {})},
        )


def _call(session, remediation: Remediation, step: rights.Step, log: str) -> None:
    """Make one call, written down before it is sent: a worker that dies before recording the
    answer leaves the call on record with `request_id` None (the state read by the next run
    tells what it did). An answer adds AWS's request id; an error its code and request id."""
    done = getattr(remediation, log)
    entry = {**step.recorded(), "at": timezone.now().isoformat()}
    if remediation.dry_run and log == "calls":
        _write(remediation, **{log: [*done, {**entry, "dry_run": True}]})
        return
    entry["request_id"] = None
    _write(remediation, **{log: [*done, entry]})
    try:
        answer = session.call("iam", step.operation, **step.params)
    except AwsError as exc:
        failed = {**entry, "request_id": exc.request_id or None, "error": exc.code}
        _write(remediation, **{log: [*done, failed]})
        raise
    _write(remediation, **{log: [*done, {**entry, "request_id": request_id(answer)}]})


def _make_calls(session, remediation: Remediation, handler, t: rights.Target, state: dict):
    """The calls still needed from `state`. NoSuchEntity means AWS changed since it was read
    (most often the call of a worker that died, landing after this run read AWS): read again,
    once, and make only the calls still missing."""
    try:
        for step in handler.steps(t, state):
            _call(session, remediation, step, "calls")
    except NoSuchEntity:
        for step in handler.steps(t, rights.read(session, t)):
            _call(session, remediation, step, "calls")


def run(pk: int, worker: str) -> str:
    """Carry out one remediation as far as it goes; returns the state it ends in."""
    remediation = _claim(pk, worker, State.PLANNED, State.RUNNING)
    if remediation is None:
        return "skipped"
    t = target(remediation)
    handler = rights.handler_for(t)
    try:
        session = _session(remediation.account)
        state = rights.read(session, t)
        if remediation.before is None:
            try:
                handler.check(t, state)
            except rights.Stop as exc:
                _move(
                    remediation,
                    State.MANUAL,
                    "manual",
                    after={"note": str(exc)},
                    note=str(exc),
                    claimed_by="",
                )
                return State.MANUAL
            _write(remediation, before=state)
        _make_calls(session, remediation, handler, t, state)
        if remediation.dry_run:
            _move(remediation, State.SIMULATED, "simulated", after={"calls": remediation.calls})
            return State.SIMULATED
        _move(remediation, State.APPLIED, "applied", applied_at=timezone.now())
        after = rights.read(session, t)
        if not handler.done(t, after):
            _fail(
                remediation,
                {
                    "code": "NotVerified",
                    "message": _("AWS still shows the right after the change."),
                },
                after=after,
            )
            return State.FAILED
        verified = timezone.now()
        grace = None
        if t.right_kind == Right.Kind.ACCESS_KEY:
            grace = verified + timedelta(days=remediation.campaign.rules.get("key_grace_days", 14))
        _move(
            remediation,
            State.VERIFIED,
            "verified",
            after={"after": after},
            after_state=after,
            verified_at=verified,
            key_delete_after=grace,
            claimed_by="",
        )
        return State.VERIFIED
    except AwsError as exc:
        return _aws_error(remediation, exc, State.PLANNED)


def _aws_error(remediation: Remediation, exc: AwsError, ready: str) -> str:
    if exc.is_transient:
        # Back to waiting for the task's retry. A throttled try is not a worker dying: it does
        # not count towards MAX_ATTEMPTS, after which the sweeper gives a remediation up.
        remediation.state, remediation.claimed_by = ready, ""
        Remediation.objects.filter(pk=remediation.pk).update(
            state=ready, claimed_by="", claimed_at=timezone.now(), attempts=F("attempts") - 1
        )
        raise Throttled(exc) from exc
    _fail(remediation, exc.as_dict())
    return State.FAILED


def _fail(remediation: Remediation, error: dict, *, after=None) -> None:
    fields = {"error": error, "claimed_by": ""}
    if after is not None:
        fields["after_state"] = after
    _move(remediation, State.FAILED, "failed", after={"error": error}, **fields)
    _alert(remediation, error)


def give_up(pk: int, exc: Throttled) -> None:
    """The task ran out of retries while AWS kept throttling or could not be reached."""
    remediation = Remediation.objects.select_related("campaign__owner", "item").get(pk=pk)
    _fail(
        remediation,
        {
            **exc.error.as_dict(),
            "message": (
                _("AWS kept throttling: %(m)s")
                if exc.error.is_throttling
                else _("AWS could not be reached: %(m)s")
            )
            % {"m": exc.error.message},
        },
    )


def abandon(pk: int) -> None:
    """A remediation whose task kept dying is given up, and its manager told; unless a worker
    showed life since the sweeper looked."""
    silent = timezone.now() - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS)
    remediation = (
        Remediation.objects.filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=silent),
            pk=pk,
            state__in=[State.PLANNED, State.RUNNING, State.ROLLBACK_PLANNED, State.ROLLING_BACK],
        )
        .select_related("campaign__owner", "item")
        .first()
    )
    if remediation is None:
        return
    _fail(
        remediation,
        {
            "code": "Abandoned",
            "message": _("No worker finished it in %(n)d attempts.") % {"n": remediation.attempts},
        },
    )


def _alert(remediation: Remediation, error: dict) -> None:
    owner = remediation.campaign.owner
    if not owner.email:
        return
    subject = _("Attest: a remediation failed in %(campaign)s") % {"campaign": remediation.campaign}
    body = _(
        "%(item)s could not be carried out: %(code)s: %(message)s\n\n"
        "Retry it, carry it out by hand, or except it: %(url)s"
    ) % {
        "item": remediation.item,
        "code": error.get("code", ""),
        "message": error.get("message", ""),
        "url": settings.SITE_URL.rstrip("/") + remediation.get_absolute_url(),
    }
    transaction.on_commit(lambda: send_mail(subject, body, None, [owner.email]))


# Rolling back ----------------------------------------------------------------------------------


def request_rollback(remediation: Remediation, by, reason: str) -> None:
    """The manager asks for the saved state to be restored."""
    reason = (reason or "").strip()
    if not reason:
        raise Refused(_("Say why the remediation is rolled back."))
    if remediation.before is None or remediation.dry_run:
        raise Refused(_("Nothing was changed in AWS: there is nothing to roll back."))
    if remediation.key_deleted_at is not None:
        raise Refused(_("The access key was deleted after its grace period: it cannot return."))
    with transaction.atomic():
        moved = Remediation.objects.filter(
            pk=remediation.pk, state__in=[State.APPLIED, State.VERIFIED, State.FAILED]
        ).update(
            state=State.ROLLBACK_PLANNED,
            rollback_reason=reason,
            rolled_back_by_name=by.get_username(),
            error=None,
            claimed_by="",
            # Queued now: the sweeper queues it again only if nothing ran it within the lease.
            claimed_at=timezone.now(),
        )
        if not moved:
            raise Refused(
                _("A remediation that is %(state)s cannot be rolled back.")
                % {"state": remediation.get_state_display().lower()}
            )
        record(
            "remediation.rollback_requested",
            remediation,
            actor=by,
            before={"state": remediation.state},
            after={"state": State.ROLLBACK_PLANNED, "reason": reason},
        )
        _queue_when_committed([remediation.pk], rollback=True)
    remediation.refresh_from_db()


def run_rollback(pk: int, worker: str) -> str:
    remediation = _claim(pk, worker, State.ROLLBACK_PLANNED, State.ROLLING_BACK)
    if remediation is None:
        return "skipped"
    t = target(remediation)
    handler = rights.handler_for(t)
    try:
        session = _session(remediation.account)
        state = rights.read(session, t)
        try:
            steps = handler.restore(t, remediation.before, state)
        except rights.Stop as exc:
            _fail(remediation, {"code": "CannotRestore", "message": str(exc)})
            return State.FAILED
        for step in steps:
            _call(session, remediation, step, "rollback_calls")
        restored = rights.read(session, t)
        if handler.restore(t, remediation.before, restored):
            _fail(
                remediation,
                {"code": "NotRestored", "message": _("AWS does not show the saved state again.")},
                after=restored,
            )
            return State.FAILED
        _move(
            remediation,
            State.ROLLED_BACK,
            "rolled_back",
            after={"restored": restored, "reason": remediation.rollback_reason},
            after_state=restored,
            rolled_back_at=timezone.now(),
            claimed_by="",
        )
        return State.ROLLED_BACK
    except AwsError as exc:
        return _aws_error(remediation, exc, State.ROLLBACK_PLANNED)


# Access keys past their grace period ------------------------------------------------------------


def delete_expired_keys(now=None) -> int:
    """Delete the access keys deactivated by a remediation whose grace period has ended."""
    now = now or timezone.now()
    due = Remediation.objects.filter(
        state=State.VERIFIED,
        key_delete_after__lte=now,
        key_deleted_at__isnull=True,
        dry_run=False,
    ).select_related("item__right__policy", "item__right__group", "account", "campaign")
    deleted = 0
    for remediation in due:
        t = target(remediation)
        handler = rights.handler_for(t)
        try:
            session = _session(remediation.account)
            state = rights.read(session, t)
            if state["status"] == "Active":
                # Someone turned it on again outside Attest: a person decides.
                _fail(
                    remediation,
                    {
                        "code": "KeyActiveAgain",
                        "message": _("The key was active again when its grace period ended."),
                    },
                    after=state,
                )
                continue
            for step in handler.delete(t, state):
                _call(session, remediation, step, "calls")
        except AwsError as exc:
            logger.warning("Deleting the access key of %s failed: %s", remediation, exc)
            continue
        with transaction.atomic():
            _write(remediation, key_deleted_at=now)
            record("remediation.key_deleted", remediation, actor_name="system")
        deleted += 1
    return deleted


# The manager's answers -------------------------------------------------------------------------


def except_(remediation: Remediation, by, reason: str) -> None:
    """The manager answers for a revocation that is not carried out (or not verified)."""
    reason = (reason or "").strip()
    if not reason:
        raise Refused(_("An exception needs a reason."))
    if attested(remediation):
        raise Refused(_("The campaign is signed off: only a rollback is still possible."))
    with transaction.atomic():
        if (
            not Remediation.objects.filter(pk=remediation.pk, excepted_at__isnull=True)
            .exclude(state__in=[State.VERIFIED, State.CANCELLED])
            .update(
                excepted_at=timezone.now(),
                excepted_by_name=by.get_username(),
                exception_reason=reason,
            )
        ):
            raise Refused(_("This remediation needs no exception."))
        record(
            "remediation.excepted",
            remediation,
            actor=by,
            after={"state": remediation.state, "reason": reason},
        )
    remediation.refresh_from_db()


def confirm(remediation: Remediation, by, ticket: str) -> None:
    """Someone made the change by hand in an import-only account; the next import verifies."""
    ticket = (ticket or "").strip()
    if not ticket:
        raise Refused(_("Give the ticket of the change made by hand."))
    if len(ticket) > 200:
        raise Refused(_("The ticket reference is longer than 200 characters."))
    if attested(remediation):
        raise Refused(_("The campaign is signed off: only a rollback is still possible."))
    with transaction.atomic():
        if not Remediation.objects.filter(pk=remediation.pk, state=State.MANUAL).update(
            state=State.APPLIED,
            confirmed_at=timezone.now(),
            confirmed_by_name=by.get_username(),
            ticket=ticket,
            applied_at=timezone.now(),
        ):
            raise Refused(_("Only a remediation waiting for a manual change can be confirmed."))
        record(
            "remediation.confirmed",
            remediation,
            actor=by,
            before={"state": State.MANUAL},
            after={"state": State.APPLIED, "ticket": ticket},
        )
    remediation.refresh_from_db()


def retry(remediation: Remediation, by) -> None:
    """Plan a failed remediation, or a dry run, again (a dry run then runs for real). A
    rollback that failed is tried again as a rollback: retrying must never remove again what
    the manager asked to restore."""
    if attested(remediation):
        raise Refused(_("The campaign is signed off: only a rollback is still possible."))
    rollback = bool(remediation.rollback_reason)
    now = timezone.now()
    # claimed_at: queued now, so the sweeper waits a lease before queueing it again.
    fields = {"error": None, "claimed_by": "", "claimed_at": now}
    if rollback:
        fields["state"] = State.ROLLBACK_PLANNED
    else:
        fields.update(state=State.PLANNED, approved_at=now, approved_by_name=by.get_username())
    if remediation.state == State.SIMULATED:
        fields.update(dry_run=False, before=None, calls=[])
    with transaction.atomic():
        moved = Remediation.objects.filter(
            pk=remediation.pk,
            state__in=[State.FAILED, State.SIMULATED],
            rollback_reason=remediation.rollback_reason,
        ).update(**fields)
        if not moved:
            raise Refused(_("Only a failed remediation or a dry run can be run again."))
        record(
            "remediation.retried",
            remediation,
            actor=by,
            before={"state": remediation.state},
            after={"state": fields["state"], "dry_run": False},
        )
        _queue_when_committed([remediation.pk], rollback=rollback)
    remediation.refresh_from_db()


# Import-only accounts --------------------------------------------------------------------------


def plannable(remediation: Remediation) -> bool:
    """Whether Attest can write the commands: a kind it handles, a reduction it could compute."""
    if (remediation.item.right_kind, remediation.action) not in rights.HANDLERS:
        return False
    return remediation.action != ReviewItem.Decision.REDUCE or remediation.replacement is not None


def plan_commands(remediation: Remediation) -> list[str]:
    """The AWS CLI commands that carry out the remediation, written against the inventory."""
    if not plannable(remediation):
        return []
    t = target(remediation)
    handler = rights.handler_for(t)
    return [rights.cli(step) for step in handler.steps(t, handler.assumed(t))]


def plan_script(account: AwsAccount, remediations) -> str:
    """A shell script of every manual remediation of the account, one block per item."""
    lines = [
        "#!/bin/sh",
        f"# Attest remediation plan for {account.name} ({account.account_id}),",
        f"# written {timezone.now():%Y-%m-%d %H:%M} UTC. Run with credentials of that account;",
        "# then confirm each item in Attest with the change's ticket. The next import verifies.",
        "set -eu",
    ]
    for remediation in remediations:
        lines += ["", f"# {remediation.item} ({remediation.get_action_display().lower()})"]
        lines += [f"#   {remediation.uuid}"]
        if plannable(remediation):
            lines += plan_commands(remediation) or ["# nothing to change"]
        else:
            lines += [f"# by hand; Attest cannot write this one: {remediation.note}"]
    return "\n".join(lines) + "\n"


def verify_from_inventory(account: AwsAccount) -> int:
    """Verify the changes confirmed by hand in the account against its current inventory."""
    confirmed = Remediation.objects.filter(
        account=account, state=State.APPLIED, confirmed_at__isnull=False
    ).select_related(
        "item__right__policy", "item__right__group", "item__policy_version", "campaign"
    )
    verified = 0
    run = {"run": str(account.current_run.uuid)} if account.current_run_id else None
    for remediation in confirmed:
        t = target(remediation)
        held = Right.objects.current().filter(
            principal__account=account, principal__arn=t.principal_arn
        )
        if _still_held(t, held):
            continue
        with transaction.atomic():
            _move(
                remediation,
                State.VERIFIED,
                "verified",
                after=run or {"run": None},
                after_state=run,
                verified_at=timezone.now(),
            )
        verified += 1
    return verified


def _still_held(t: rights.Target, held) -> bool:
    if t.action == ReviewItem.Decision.REDUCE:
        if t.right_kind == Right.Kind.INLINE_POLICY:
            return not held.filter(
                kind=t.right_kind, key=t.right_key, document=t.replacement
            ).exists()
        original = held.filter(kind=t.right_kind, key=t.right_key).exists()
        return (
            original
            or not held.filter(kind=Right.Kind.MANAGED_POLICY, key=t.replacement_arn).exists()
        )
    same = held.filter(kind=t.right_kind, key=t.right_key)
    if t.right_kind == Right.Kind.ACCESS_KEY:
        same = same.filter(status="Active")
    return same.exists()


# Sign-off --------------------------------------------------------------------------------------


def unsettled(campaign: Campaign):
    """Revoke and reduce items that are neither verified nor excepted by the manager."""
    settled = Remediation.objects.filter(item=OuterRef("pk")).filter(
        Q(state=State.VERIFIED) | Q(excepted_at__isnull=False)
    )
    return campaign.items.filter(decision__in=ACTIONS).exclude(Exists(settled))
