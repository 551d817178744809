"""Creating and launching campaigns: the population frozen into review items.

Launch refuses, naming the account, when an account in scope has no complete collection newer
than the campaign allows. Otherwise it makes one item per current principal and right in scope,
each with what its reviewer will be shown (the rows of the inventory it points at never change;
what could change is copied onto the item), its recommendation and its reviewer, and makes the
campaign active, in one transaction. A launch asked for in the browser runs in a worker
(`request_launch`; `reviews.handover` says how), as launches on schedule already do.
"""

from __future__ import annotations

import gc
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from audit.trail import record
from config import bulk
from inventory import policies
from inventory.models import (
    ActionUsage,
    AwsAccount,
    ManagedPolicy,
    PolicyVersion,
    Principal,
    Right,
    ServiceUsage,
)
from reviews import handover, recommend, tallies
from reviews.models import Campaign, CampaignDefinition, ReviewItem, period_start, shown_digest
from reviews.reviewers import Directory, resolve

DEFAULT_RULES = {
    "unused_days": 90,
    "owner_tag": "owner",
    "reason_for_privileged_keep": True,
    "reason_for_unused_keep": True,
    "reason_for_revoke": True,
    "default_outcome": "recommendation",
    "remediation_start": "at_close",
    "remediation_dry_run": False,
    "key_grace_days": 14,
    "reminder_days": [7, 1],
    "max_data_age_days": 7,
    "kinds": [kind for kind, _ in Principal.Kind.choices],
    "privileged_only": False,
    "tag_filters": {},
    "stages": [],
    "assignments": [],
}
HOLDERS_SHOWN = 20
# audit.models.canonical_json without the cycle check: an item's facts are new and hold no
# cycles, and 100,000 of them are encoded at a launch.
_canonical = partial(
    json.dumps,
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    default=str,
    check_circular=False,
)


class LaunchRefused(Exception):
    """A campaign that cannot be launched, and why."""


def new_campaign(
    *,
    name: str,
    owner,
    due_date: date,
    accounts=None,
    definition: CampaignDefinition | None = None,
    period: date | None = None,
    by=None,
) -> Campaign:
    """A draft campaign: its scope and rules are set, its population not yet frozen."""
    if due_date <= timezone.localdate():
        raise LaunchRefused(
            _("the due date %(due)s is not in the future")
            % {"due": formats.date_format(due_date, "SHORT_DATE_FORMAT")}
        )
    rules = {**DEFAULT_RULES, **(definition.rules() if definition else {})}
    if accounts is None:
        accounts = list(definition.accounts.all()) if definition else []
    accounts = accounts or list(AwsAccount.objects.filter(active=True))
    if not accounts:
        raise LaunchRefused(_("no account in scope: add an AWS account first"))
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            definition=definition,
            period_start=period,
            owner=owner,
            due_date=due_date,
            rules=rules,
            fallback_reviewer=definition.fallback_reviewer if definition else None,
        )
        campaign.accounts.set(accounts)
        record(
            "campaign.created",
            campaign,
            actor=by,
            after={
                "name": name,
                "owner": owner.get_username(),
                "due": due_date,
                "accounts": sorted(a.account_id for a in accounts),
                "rules": rules,
            },
        )
    return campaign


def stale_accounts(campaign: Campaign, now: datetime | None = None) -> list[str]:
    """Why each account in scope cannot be launched on, one sentence an account."""
    now = now or timezone.now()
    max_age = timedelta(days=campaign.rules["max_data_age_days"])
    problems = []
    for account in campaign.accounts.select_related("current_run").order_by("account_id"):
        run = account.current_run
        if run is None:
            problems.append(
                _("account %(account)s has no complete collection") % {"account": account}
            )
        elif now - run.finished_at > max_age:
            problems.append(
                _(
                    "account %(account)s: its last complete collection is %(days)d days old "
                    "(the campaign allows %(allowed)d)"
                )
                % {
                    "account": account,
                    "days": (now - run.finished_at).days,
                    "allowed": max_age.days,
                }
            )
    return problems


@dataclass
class Preview:
    items: int
    by_account: dict[str, int]
    by_reviewer: dict[str, int]
    problems: list[str]


def preview(campaign: Campaign) -> Preview:
    """What launching would freeze, without freezing it."""
    problems = stale_accounts(campaign)
    tally = _Tally()
    if not problems:
        with _no_cycle_collection():
            for items in populations(campaign):
                for _item in tally.counting(items):
                    pass
    return Preview(tally.items, tally.by_account(), tally.by_reviewer(), problems)


class _Tally:
    """How many items go to each account and each reviewer, counted as they go by."""

    def __init__(self):
        self.accounts: Counter = Counter()
        self.reviewers: Counter = Counter()
        # Each item's tally: every one undecided, with its first reviewer.
        self.tallies: Counter = Counter()
        self.items = 0

    def counting(self, items: Iterable[ReviewItem]) -> Iterator[ReviewItem]:
        for item in items:
            self.accounts[f"{item.account_name} ({item.account_id})"] += 1
            self.reviewers[item.reviewer.get_username() if item.reviewer else ""] += 1
            self.tallies[tallies.key(item)] += 1
            self.items += 1
            yield item

    def by_account(self) -> dict[str, int]:
        return dict(sorted(self.accounts.items()))

    def by_reviewer(self) -> dict[str, int]:
        return dict(sorted(self.reviewers.items()))


def request_launch(campaign: Campaign, by=None) -> None:
    """Launch the draft in a worker (`launch`, handed over as `reviews.handover` says): a
    campaign of 100,000 items takes longer to launch than a browser waits for a page. Refuses
    at once what the worker would refuse: a campaign no longer a draft, stale accounts."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != Campaign.State.DRAFT:
            raise LaunchRefused(_not_a_draft(locked))
        problems = stale_accounts(locked)
        if problems:
            raise LaunchRefused("; ".join(problems))
        handover.LAUNCH.ask(locked, by)
    campaign.refresh_from_db()


def _not_a_draft(campaign: Campaign) -> str:
    return _("campaign %(campaign)s is %(state)s") % {
        "campaign": campaign,
        "state": campaign.get_state_display().lower(),
    }


def launch(campaign: Campaign, by=None) -> Campaign:
    """Freeze the population of a draft campaign (or one its manager asked to launch, which a
    worker launches) and open it for review."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state not in (Campaign.State.DRAFT, Campaign.State.LAUNCHING):
            raise LaunchRefused(_not_a_draft(campaign))
        problems = stale_accounts(campaign)
        if problems:
            raise LaunchRefused("; ".join(problems))
        tally = _Tally()
        with _no_cycle_collection():
            for items in populations(campaign):
                # Written as they are made, so that PostgreSQL takes each row in while the
                # next are built. Nothing points at an item before launch returns, and nobody
                # needs their ids.
                bulk.insert(ReviewItem, tally.counting(items))
        tallies.start(tally.tallies)
        campaign.state = Campaign.State.ACTIVE
        campaign.launched_at = timezone.now()
        campaign.item_count = tally.items
        campaign.save(update_fields=["state", "launched_at", "item_count"])
        # Every account's run, also one with no item in scope: the campaign was launched on it,
        # and "nothing to review there" is a finding of that run.
        campaign.runs.set([a.current_run_id for a in campaign.accounts.all()])
        record(
            "campaign.launched",
            campaign,
            actor=by,
            after={
                "items": tally.items,
                "by_account": tally.by_account(),
                "by_reviewer": tally.by_reviewer(),
            },
        )
    return campaign


def launch_due(definition: CampaignDefinition, today: date | None = None) -> Campaign | None:
    """Launch the definition's campaign of the current period, unless it exists: safe however
    many beat or worker processes call it at once (the database allows one per period)."""
    today = today or timezone.localdate()
    period = period_start(definition.cadence, today)
    if Campaign.objects.filter(definition=definition, period_start=period).exists():
        return None
    try:
        with transaction.atomic():
            campaign = new_campaign(
                name=period_name(definition, period),
                owner=definition.owner,
                due_date=today + timedelta(days=definition.review_days),
                definition=definition,
                period=period,
            )
            return launch(campaign)
    except IntegrityError:
        return None  # another process launched it first


def period_name(definition: CampaignDefinition, period: date) -> str:
    """The name of a definition's campaign of a period: "Quarterly review 2026 Q4"."""
    return f"{definition.name} {_period_label(definition.cadence, period)}"


def _period_label(cadence: str, period: date) -> str:
    if cadence == "quarterly":
        return f"{period.year} Q{(period.month - 1) // 3 + 1}"
    if cadence == "semiannual":
        return f"{period.year} H{(period.month - 1) // 6 + 1}"
    if cadence == "annual":
        return str(period.year)
    return f"{period:%Y-%m}"


# The population ---------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def populations(campaign: Campaign) -> Iterator[Iterator[ReviewItem]]:
    """The campaign's review items, unsaved, from each account's current collection: for each
    account in turn, its items one at a time as they are made. An account's inventory is read
    before its first item, so that one account's inventory at a time is in memory, and no query
    runs while its items are written."""
    rules = campaign.rules
    directory = Directory()
    users = {user.pk: user for user in directory.users()}
    assignments = [
        (pattern, users[user_id]) for pattern, user_id in rules["assignments"] if user_id in users
    ]
    campaign.fallback_reviewer  # noqa: B018 (read now, not while the items are written)
    accounts = campaign.accounts.select_related("owner", "current_run").order_by("account_id")
    for account in accounts:
        yield _AccountPopulation(campaign, account, directory, assignments).items()


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector off while a population is built and written: it would walk the
    millions of objects of 100,000 items again and again (half the time of a launch), and they
    hold no cycles to collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _AccountPopulation:
    """One account's items, from a handful of queries whatever its size."""

    def __init__(self, campaign: Campaign, account: AwsAccount, directory, assignments):
        self.campaign = campaign
        self.account = account
        self.rules = campaign.rules
        self.directory = directory
        self.assignments = assignments
        self.now = timezone.now()
        self.run = account.current_run
        current = {"removed_run__isnull": True}
        self.principals = list(
            Principal.objects.filter(account=account, **current).order_by("name", "pk")
        )
        self.rights: dict[int, list[Right]] = defaultdict(list)
        for right in Right.objects.filter(principal__account=account, **current).order_by(
            "kind", "key", "pk"
        ):
            self.rights[right.principal_id].append(right)
            right.shared_as = _shared_as(right)
        # Once each, rather than once for each of the thousands of rights that point at them.
        rights = [right for held in self.rights.values() for right in held]
        self.policies = ManagedPolicy.objects.in_bulk({r.policy_id for r in rights} - {None})
        self.groups = Principal.objects.in_bulk({r.group_id for r in rights} - {None})
        self.versions = {
            version.policy_id: version
            for version in PolicyVersion.objects.filter(
                policy__account=account, is_default=True, **current
            )
        }
        self.usage: dict[int, dict[str, tuple]] = defaultdict(dict)
        for usage in ServiceUsage.objects.filter(principal__account=account, **current).values_list(
            "principal_id",
            "service_namespace",
            "service_name",
            "last_authenticated_at",
            "actions_tracked",
            named=True,
        ):
            self.usage[usage.principal_id][usage.service_namespace] = usage
        self.actions: dict[int, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
        for principal_id, namespace, action, last in ActionUsage.objects.filter(
            principal__account=account, **current
        ).values_list("principal_id", "service_namespace", "action", "last_accessed_at"):
            self.actions[principal_id][namespace][action] = last
        self.holders: dict[tuple, list[str]] = defaultdict(list)
        names = {p.pk: p.name for p in self.principals}
        for principal_id, rights in self.rights.items():
            for right in rights:
                if right.kind == Right.Kind.MANAGED_POLICY and right.policy_id:
                    self.holders[("policy", right.policy_id)].append(names.get(principal_id, ""))
                elif right.kind == Right.Kind.GROUP_MEMBERSHIP and right.group_id:
                    self.holders[("group", right.group_id)].append(names.get(principal_id, ""))
        for holders in self.holders.values():
            holders.sort()
        self.holder_counts = {key: Counter(holders) for key, holders in self.holders.items()}
        # What a policy or a group brings is the same for each of its holders: worked out once.
        self.shared: dict[tuple, object] = {}
        # Usage dates recur across the items of a principal, and of many principals.
        self.isos: dict[datetime, str] = {}
        self.run_facts = {"uuid": str(self.run.uuid), "finished_at": _iso(self.run.finished_at)}

    def _iso(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        found = self.isos.get(moment)
        if found is None:
            found = self.isos[moment] = moment.isoformat()
        return found

    def _shared(self, right: Right, key: tuple, compute):
        """compute() about the right's documents: once for all the rights that bring the same
        managed policy or group, every time for an inline policy."""
        if right.shared_as is None:
            return compute()
        key = (*right.shared_as, *key)
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]

    def _in_scope(self, principal: Principal) -> bool:
        if principal.kind not in self.rules["kinds"]:
            return False
        return all(principal.tags.get(k) == v for k, v in self.rules["tag_filters"].items())

    def _documents(self, right: Right) -> tuple[list[dict], list[dict]]:
        """The documents a right brings, and how the item refers to them."""
        if right.kind in (Right.Kind.MANAGED_POLICY, Right.Kind.PERMISSIONS_BOUNDARY):
            version = self.versions.get(right.policy_id)
            if version is None:
                return [], []
            policy = self.policies[right.policy_id]
            return [version.document], [
                {"name": policy.name, "arn": policy.arn, "version": version.pk}
            ]
        if right.kind == Right.Kind.INLINE_POLICY:
            return [right.document], []
        if right.kind == Right.Kind.GROUP_MEMBERSHIP and right.group_id:
            documents, refs = [], []
            for granted in self.rights.get(right.group_id, []):
                if granted.kind == Right.Kind.MANAGED_POLICY:
                    found, ref = self._documents(granted)
                    documents += found
                    refs += ref
                elif granted.kind == Right.Kind.INLINE_POLICY:
                    documents.append(granted.document)
                    refs.append({"name": granted.key, "inline_right": granted.pk})
            return documents, refs
        return [], []

    def items(self) -> Iterator[ReviewItem]:
        rules = self.rules
        for principal in self.principals:
            if not self._in_scope(principal):
                continue
            reviewer, source = resolve(
                principal,
                account_owner=self.account.owner,
                assignments=self.assignments,
                fallback=self.campaign.fallback_reviewer,
                owner_tag=rules["owner_tag"],
                directory=self.directory,
            )
            usage = self.usage.get(principal.id, {})
            known = frozenset(usage)
            rights = self.rights.get(principal.id, [])
            documents = {
                right.id: self._shared(right, ("documents",), partial(self._documents, right))
                for right in rights
            }
            allowed = {
                right.id: self._shared(
                    right,
                    ("services", known),
                    partial(policies.services, documents[right.id][0], known),
                )
                for right in rights
                if right.kind != Right.Kind.PERMISSIONS_BOUNDARY
            }
            granted_by = Counter(ns for services in allowed.values() for ns in services)
            # The same for each of the principal's items.
            shown = {
                "arn": principal.arn,
                "path": principal.path,
                "created_at": _iso(principal.created_at),
                "last_used_at": _iso(principal.last_used_at),
                "tags": principal.tags,
            }
            who = (reviewer, source, shown)
            for right in rights:
                item = self._item(principal, right, documents[right.id], allowed, granted_by, who)
                if item is not None:
                    yield item

    def _item(self, principal, right, documents, allowed, granted_by, who) -> ReviewItem | None:
        """The item of one right; `who`: its reviewer, how they were found, and the facts of
        the principal."""
        reviewer, source, shown = who
        docs, refs = documents
        # Read once: a foreign key's id goes through its descriptor at each read.
        policy_id, group_id = right.policy_id, right.group_id
        policy = self.policies[policy_id] if policy_id else None
        privileges = (
            self._shared(right, ("privileges",), partial(policies.privileges, docs)) if docs else []
        )
        if right.kind == Right.Kind.PERMISSIONS_BOUNDARY:
            privileges = []  # a boundary grants nothing
        if self.rules["privileged_only"] and not privileges:
            return None
        usage = self.usage.get(principal.id, {})
        actions = self.actions.get(principal.id, {})
        services = []
        for namespace in sorted(allowed.get(right.id, ())):
            seen = usage.get(namespace)
            services.append(
                recommend.Service(
                    namespace=namespace,
                    name=seen.service_name if seen else namespace,
                    last_used=seen.last_authenticated_at if seen else None,
                    tracked=bool(seen and seen.actions_tracked),
                    actions={
                        action: last
                        for action, last in actions.get(namespace, {}).items()
                        if self._shared(
                            right,
                            ("allows", namespace, action),
                            partial(policies.allows, docs, f"{namespace}:{action}"),
                        )
                    },
                )
            )
        credential = {
            "status": right.status,
            "created_at": right.created_at,
            "last_used_at": right.last_used_at,
            "last_used_service": right.last_used_service,
            "last_used_region": right.last_used_region,
            "mfa_active": right.mfa_active,
        }
        judgement = recommend.judge(
            kind=right.kind,
            services=services,
            now=self.now,
            window_days=self.rules["unused_days"],
            principal_created=principal.created_at,
            has_usage_data=bool(usage),
            shared_services={ns for ns in allowed.get(right.id, ()) if granted_by[ns] > 1},
            credential=credential,
        )
        holders, counts = [], Counter()
        if right.kind == Right.Kind.MANAGED_POLICY and policy_id:
            holders = self.holders[("policy", policy_id)]
            counts = self.holder_counts[("policy", policy_id)]
        elif right.kind == Right.Kind.GROUP_MEMBERSHIP and group_id:
            holders = self.holders[("group", group_id)]
            counts = self.holder_counts[("group", group_id)]
        # Sorted once for every holder (holders of a common policy run to thousands): the first
        # others are among the first names, once the principal's own are set aside.
        head = holders[: HOLDERS_SHOWN + counts[principal.name]]
        others = [name for name in head if name != principal.name][:HOLDERS_SHOWN]
        facts = {
            "principal": shown,
            "right": {
                "policy_arn": policy.arn if policy else None,
                "aws_managed": policy.aws_managed if policy else None,
                "group": self.groups[group_id].name if group_id else None,
                **{k: _iso(v) if isinstance(v, datetime) else v for k, v in credential.items()},
            },
            "documents": refs,
            "services": [
                {
                    "namespace": s.namespace,
                    "name": s.name,
                    "last_used": self._iso(s.last_used),
                    "tracked": s.tracked,
                    "actions": {a: self._iso(last) for a, last in sorted(s.actions.items())},
                }
                for s in services
            ],
            "privileges": privileges,
            "reason": judgement.reason,
            "caveats": judgement.caveats,
            "keep": judgement.keep,
            "unused": judgement.unused,
            "holders": {"count": len(holders) - counts[principal.name], "names": others},
            "run": self.run_facts,
        }
        last_used = (
            right.last_used_at
            if right.kind
            in (
                Right.Kind.ACCESS_KEY,
                Right.Kind.CONSOLE_PASSWORD,
            )
            else max((s.last_used for s in services if s.last_used), default=None)
        )
        version = self.versions.get(policy_id) if policy else None
        # Encoded once, for the row and for the digest of what the reviewer is shown.
        facts_json = _canonical(facts)
        # By id, without ReviewItem(): its checks of each field cost more than the rest of the
        # item, times 100,000.
        return bulk.new(
            ReviewItem,
            {
                "campaign_id": self.campaign.id,
                "run_id": self.run.id,
                "principal_id": principal.id,
                "right_id": right.id,
                "policy_version_id": version.id if version else None,
                "account_id": self.account.account_id,
                "account_name": self.account.name,
                "principal_kind": principal.kind,
                "principal_arn": principal.arn,
                "principal_name": principal.name,
                "right_kind": right.kind,
                "right_key": right.key,
                "right_label": _label(right, policy),
                "last_used_at": last_used,
                "privileged": bool(privileges),
                "recommendation": judgement.recommendation,
                "facts": facts,
                "shown_sha256": shown_digest(
                    principal.arn, right.kind, right.key, judgement.recommendation, facts_json
                ),
                "reviewer_id": reviewer.id if reviewer else None,
                "reviewer_source": source,
            },
            {"reviewer": reviewer},
            encoded={"facts": facts_json},
        )


def _shared_as(right: Right) -> tuple | None:
    """What the right brings its documents through, when other rights bring the same: its
    managed policy or its group. Worked out once a right, as _shared asks it many times."""
    if right.kind in (Right.Kind.MANAGED_POLICY, Right.Kind.PERMISSIONS_BOUNDARY):
        return ("policy", right.policy_id)
    if right.kind == Right.Kind.GROUP_MEMBERSHIP and right.group_id:
        return ("group", right.group_id)
    return None


def _label(right: Right, policy: ManagedPolicy | None) -> str:
    if right.kind in (Right.Kind.MANAGED_POLICY, Right.Kind.PERMISSIONS_BOUNDARY):
        return policy.name if policy else right.key.rsplit("/", 1)[-1]
    if right.kind == Right.Kind.ACCESS_KEY:
        return right.key[:10]  # the day the key was created
    if right.kind == Right.Kind.CONSOLE_PASSWORD:
        return ""
    return right.key
