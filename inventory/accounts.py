"""Adding and changing AWS accounts, each change written to the audit trail with it."""

from django.db import transaction

from audit.trail import record
from inventory.models import AwsAccount

AUDITED_FIELDS = (
    "name",
    "mode",
    "role_arn",
    "remediation_role_arn",
    "external_id",
    "owner",
    "active",
    "organization_state",
)


def account_state(account: AwsAccount) -> dict:
    state = {name: getattr(account, name) for name in AUDITED_FIELDS}
    state["owner"] = account.owner.get_username() if account.owner_id else None
    return state


def save_account(account: AwsAccount, *, actor=None, actor_name: str = "") -> bool:
    """Save the account and record what changed; returns whether it is new."""
    with transaction.atomic():
        stored = AwsAccount.objects.filter(pk=account.pk).first() if account.pk else None
        before = account_state(stored) if stored else None
        account.save()
        after = account_state(account)
        if before != after:
            record(
                "account.added" if before is None else "account.changed",
                account,
                actor=actor,
                actor_name=actor_name,
                before=before,
                after=after,
            )
    return before is None
