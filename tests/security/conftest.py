"""The world the access matrix asks about: two of everything, one the actor's own.

- The reviewer owns payments-prod (111122223333); rob, another reviewer, owns marketing-prod
  (444455556666), collected live. Each has 3 roles, so 6 items in each campaign over it.
- The manager's campaign covers both accounts (the reviewer has items in it); mona, another
  manager, has one over marketing-prod alone (nothing in it is the reviewer's).
- Remediations: a manual one in the manager's campaign, of the reviewer's item in
  payments-prod (import-only since the launch), and a planned one in mona's campaign.
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group

from config import roles
from inventory.models import AwsAccount, CollectionRun, Principal
from reviews import tallies
from reviews.models import Decision, Remediation, ReviewItem
from tests import factories
from tests.reviews.builders import launched
from tests.security.matrix import OTHER, OWN


def _remediation(item, state):
    decision = Decision.objects.create(
        item=item,
        campaign_id=item.campaign_id,
        decision="revoke",
        reason="Not used.",
        decided_by_name=item.reviewer.username,
        shown_sha256="0" * 64,
    )
    ReviewItem.objects.filter(pk=item.pk).update(decision="revoke", decided_at=decision.decided_at)
    tallies.recount(item.campaign_id)
    return Remediation.objects.create(
        item=item,
        campaign_id=item.campaign_id,
        account=AwsAccount.objects.get(account_id=item.account_id),
        decision=decision,
        action="revoke",
        state=state,
    )


@pytest.fixture
def world(reviewer, manager, auditor, administrator, outsider, account, other_account):
    rob = factories.UserFactory(username="rob.reviewer")
    rob.groups.add(Group.objects.get(name=roles.REVIEWER))
    mona = factories.UserFactory(username="mona.manager")
    mona.groups.add(Group.objects.get(name=roles.MANAGER))
    other_account.owner = rob
    other_account.save(update_fields=["owner"])

    campaigns = {
        OWN: launched(manager, [account, other_account]),
        OTHER: launched(mona, [other_account]),
    }
    mine = campaigns[OWN].items.filter(reviewer=reviewer, right_kind="managed_policy")
    robs = campaigns[OWN].items.filter(reviewer=rob, right_kind="managed_policy")
    items = {OWN: mine.first(), OTHER: robs.first()}
    rob_in = {
        target: campaign.items.filter(reviewer=rob).first()
        for target, campaign in campaigns.items()
    }

    AwsAccount.objects.filter(pk=account.pk).update(mode=AwsAccount.Mode.IMPORT)
    remediations = {
        OWN: _remediation(items[OWN], Remediation.State.MANUAL),
        OTHER: _remediation(
            campaigns[OTHER].items.filter(right_kind="managed_policy").first(),
            Remediation.State.PLANNED,
        ),
    }
    accounts = {OWN: account, OTHER: other_account}
    return SimpleNamespace(
        users={
            "reviewer": reviewer,
            "manager": manager,
            "auditor": auditor,
            "admin": administrator,
            "outsider": outsider,
            "rob": rob,
            "mona": mona,
        },
        account=accounts,
        run={t: CollectionRun.objects.get(pk=a.current_run_id) for t, a in accounts.items()},
        principal={t: Principal.objects.filter(account=a).first() for t, a in accounts.items()},
        campaign=campaigns,
        item=items,
        campaign_item_of_rob=rob_in,
        remediation=remediations,
    )


# What each URL argument names, from the world, for the row's object.
OBJECTS = {
    "account_id": lambda w, target: w.account[target].account_id,
    "run_uuid": lambda w, target: w.run[target].uuid,
    "principal_uuid": lambda w, target: w.principal[target].uuid,
    "item_uuid": lambda w, target: w.item[target].uuid,
    "campaign_uuid": lambda w, target: w.campaign[target].uuid,
    "remediation_uuid": lambda w, target: w.remediation[target].uuid,
}
