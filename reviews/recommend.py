"""What Attest recommends for a right, from how it was used, and what the data cannot tell.

Access Advisor reports per principal and service (and per action for the services AWS tracks),
not per policy: a right is judged by the use of the services it allows. Reasons and caveats are
codes with their details, frozen on the item at launch and worded in the reader's language by
`describe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from config.templatetags.attest import iso_day
from inventory.models import Right

KEEP, REVOKE, REDUCE, NONE = "keep", "revoke", "reduce", "none"
# A key not rotated for this long is called out whatever its use.
KEY_ROTATION_DAYS = 365


@dataclass
class Service:
    """One service a right allows, with the principal's use of it."""

    namespace: str
    name: str
    last_used: datetime | None
    tracked: bool
    # Tracked actions this right allows: action -> last use (None: never).
    actions: dict[str, datetime | None] = field(default_factory=dict)


@dataclass
class Judgement:
    recommendation: str
    reason: dict
    caveats: list[dict] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    unused: bool = False


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def judge(
    *,
    kind: str,
    services: list[Service],
    now: datetime,
    window_days: int,
    principal_created: datetime | None,
    has_usage_data: bool,
    shared_services: set[str] = frozenset(),
    credential: dict | None = None,
) -> Judgement:
    """The recommendation for one right.

    `services`: what the right allows, with use; `has_usage_data`: whether Access Advisor
    answered for the principal at all; `shared_services`: services another right of the same
    principal also allows (their use cannot be told apart); `credential`: for an access key or
    a console password, its status, creation, last use and MFA.
    """
    cutoff = now - timedelta(days=window_days)
    caveats: list[dict] = []
    young = None
    if principal_created and principal_created > cutoff:
        young = {"code": "young", "days": (now - principal_created).days, "window": window_days}
        caveats.append(young)
    judgement = _judge(
        kind,
        services,
        now,
        cutoff,
        window_days,
        caveats,
        has_usage_data=has_usage_data,
        shared_services=shared_services,
        credential=credential,
    )
    if young and judgement.reason["code"] in ("unused", "partly_used", "credential_unused"):
        # A principal younger than the window has not had the time to use what it holds: the
        # absence of use is no evidence, and a default outcome at close would act on it.
        return Judgement(NONE, young, caveats)
    return judgement


def _judge(
    kind,
    services,
    now,
    cutoff,
    window_days,
    caveats,
    *,
    has_usage_data,
    shared_services,
    credential,
) -> Judgement:
    if kind in (Right.Kind.ACCESS_KEY, Right.Kind.CONSOLE_PASSWORD):
        return _judge_credential(kind, credential or {}, now, cutoff, window_days, caveats)
    if kind == Right.Kind.PERMISSIONS_BOUNDARY:
        return Judgement(KEEP, {"code": "boundary"}, caveats)
    if not has_usage_data:
        caveats.append({"code": "no_usage_data"})
        return Judgement(NONE, {"code": "no_usage_data"}, caveats)
    if not services:
        return Judgement(KEEP, {"code": "grants_nothing_reported"}, caveats)

    shared = sorted(s.namespace for s in services if s.namespace in shared_services)
    if shared:
        caveats.append({"code": "shared", "services": shared})
    used = [s for s in services if s.last_used and s.last_used >= cutoff]
    if not used:
        last = max((s.last_used for s in services if s.last_used), default=None)
        return Judgement(
            REVOKE,
            {
                "code": "unused",
                "services": len(services),
                "window": window_days,
                "last": _iso(last),
            },
            caveats,
            unused=True,
        )

    keep: list[str] = []
    untracked: list[str] = []
    partial = len(used) < len(services)
    for service in used:
        recent = sorted(a for a, last in service.actions.items() if last and last >= cutoff)
        if service.tracked and service.actions and recent and len(recent) < len(service.actions):
            keep += [f"{service.namespace}:{action}" for action in recent]
            partial = True
        else:
            keep.append(service.namespace)
            if not service.tracked:
                untracked.append(service.namespace)
    if not partial:
        return Judgement(KEEP, {"code": "used", "window": window_days}, caveats)
    if untracked:
        caveats.append({"code": "untracked", "services": sorted(untracked)})
    unused_services = sorted(s.namespace for s in services if s not in used)
    return Judgement(
        REDUCE,
        {
            "code": "partly_used",
            "used": sorted(s.namespace for s in used),
            "unused": unused_services,
            "window": window_days,
        },
        caveats,
        keep=sorted(keep),
    )


def _judge_credential(kind, credential, now, cutoff, window_days, caveats) -> Judgement:
    last = credential.get("last_used_at")
    created = credential.get("created_at")
    if kind == Right.Kind.ACCESS_KEY and created and (now - created).days > KEY_ROTATION_DAYS:
        caveats.append({"code": "old_key", "days": (now - created).days})
    if kind == Right.Kind.CONSOLE_PASSWORD and not credential.get("mfa_active"):
        caveats.append({"code": "no_mfa"})
    if credential.get("status") == "Inactive":
        return Judgement(REVOKE, {"code": "inactive_key"}, caveats, unused=True)
    if last and last >= cutoff:
        return Judgement(KEEP, {"code": "credential_used", "window": window_days}, caveats)
    return Judgement(
        REVOKE,
        {"code": "credential_unused", "window": window_days, "last": _iso(last)},
        caveats,
        unused=True,
    )


def _date(value: str | None) -> str:
    return iso_day(value) if value else _("never")


def describe(reason: dict) -> str:
    """A recommendation's reason or a caveat in plain words, in the reader's language."""
    code = reason["code"]
    window = reason.get("window")
    if code == "unused":
        return ngettext(
            "The one service it allows was not used in the last %(window)d days "
            "(last use: %(last)s).",
            "None of the %(count)d services it allows was used in the last %(window)d days "
            "(last use: %(last)s).",
            reason["services"],
        ) % {"count": reason["services"], "window": window, "last": _date(reason["last"])}
    if code == "used":
        return _("Every service it allows was used in the last %(window)d days.") % {
            "window": window
        }
    if code == "partly_used":
        return _(
            "Only %(used)s of what it allows was used in the last %(window)d days; "
            "%(unused)s was not."
        ) % {
            "used": ", ".join(reason["used"]),
            "unused": ", ".join(reason["unused"]) or _("some actions"),
            "window": window,
        }
    if code == "credential_used":
        return _("Used in the last %(window)d days.") % {"window": window}
    if code == "credential_unused":
        return _("Not used in the last %(window)d days (last use: %(last)s).") % {
            "window": window,
            "last": _date(reason["last"]),
        }
    if code == "inactive_key":
        return _("The key is inactive: nobody can use it, and it can be deleted.")
    if code == "boundary":
        return _("A permissions boundary limits what the policies allow; it grants nothing.")
    if code == "grants_nothing_reported":
        return _("Access Advisor reports no service this right allows.")
    if code == "no_usage_data":
        return _("Attest has no Access Advisor data for this principal: usage is unknown.")
    if code == "young":
        return ngettext(
            "The principal was created %(days)d day ago, less than the %(window)d days the "
            "recommendation looks at.",
            "The principal was created %(days)d days ago, less than the %(window)d days the "
            "recommendation looks at.",
            reason["days"],
        ) % {"days": reason["days"], "window": reason["window"]}
    if code == "shared":
        return _(
            "Another right of this principal also allows %(services)s: AWS reports use per "
            "principal, so that use may come through the other right."
        ) % {"services": ", ".join(reason["services"])}
    if code == "untracked":
        return _(
            "AWS does not track the actions of %(services)s: only whole services can be kept."
        ) % {"services": ", ".join(reason["services"])}
    if code == "old_key":
        return _("The key was created %(days)d days ago and never rotated since.") % {
            "days": reason["days"]
        }
    if code == "no_mfa":
        return _("Console sign-in without multi-factor authentication (MFA).")
    return code
