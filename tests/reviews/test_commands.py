"""`manage.py launch_campaign` and `manage.py close_campaign`, as an operator runs them."""

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from inventory.models import CollectionRun
from reviews.decide import Choice, decide_many
from reviews.models import Campaign
from tests import factories
from tests.reviews.builders import launched


def due(days=21):
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def launch_campaign(*options, owner="max.manager", due_date=None, name="2026 Q4"):
    """The command's (stdout, stderr); raises what the command raises."""
    out, err = io.StringIO(), io.StringIO()
    args = ["--name", name, "--due", due_date or due(), "--owner", owner, *options]
    call_command("launch_campaign", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused_launch(*options, **kwargs) -> str:
    """A launch refused with exit status 1: what it wrote on stderr."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "launch_campaign",
            "--name", kwargs.get("name", "2026 Q4"),
            "--due", kwargs.get("due_date") or due(),
            "--owner", "max.manager",
            *options,
            stdout=io.StringIO(),
            stderr=err,
        )  # fmt: skip
    assert exited.value.code == 1
    return err.getvalue()


def assert_no_campaign():
    assert not Campaign.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="campaign.").exists()


# launch_campaign -------------------------------------------------------------------------------


def test_launch_prints_the_campaigns_id_and_item_count(account, other_account, manager):
    out, err = launch_campaign()

    campaign = Campaign.objects.get()
    assert out == f"{campaign.uuid} 12 items\n"
    assert err == ""
    assert (campaign.name, campaign.owner, campaign.state) == ("2026 Q4", manager, "active")
    assert campaign.due_date.isoformat() == due()
    assert campaign.item_count == campaign.items.count() == 12


def test_launch_as_json_gives_the_counts_per_account_and_reviewer(account, other_account, manager):
    out, _ = launch_campaign("--json")

    campaign = Campaign.objects.get()
    assert json.loads(out) == {
        "id": str(campaign.uuid),
        "items": 12,
        "items_by_account": {"111122223333": 6, "444455556666": 6},
        "reviewers": {"": 6, "rita.reviewer": 6},
    }


def test_launch_covers_the_accounts_named_once_each(account, other_account, manager):
    out, _ = launch_campaign("--account", "111122223333", "--account", "111122223333", "--json")
    assert json.loads(out)["items_by_account"] == {"111122223333": 6}
    assert list(Campaign.objects.get().accounts.all()) == [account]


def test_an_account_with_nothing_to_review_shows_as_zero(account, manager):
    factories.collected_account("777788889999", "sandbox", principals=0)
    out, _ = launch_campaign("--json")
    shown = json.loads(out)
    assert shown["items"] == 6
    assert shown["items_by_account"] == {"111122223333": 6, "777788889999": 0}


def test_a_refused_launch_exits_non_zero_with_the_reason_and_leaves_no_campaign(
    account, other_account, manager
):
    CollectionRun.objects.filter(pk=other_account.current_run_id).update(
        finished_at=timezone.now() - timedelta(days=8, hours=1)
    )
    err = refused_launch()
    assert err == (
        "launch refused: account marketing-prod (444455556666): its last complete collection "
        "is 8 days old (the campaign allows 7)\n"
    )
    assert_no_campaign()


def test_a_launch_on_an_account_never_collected_is_refused_naming_it(account, manager):
    factories.AwsAccountFactory(account_id="777788889999", name="sandbox")
    err = refused_launch("--account", "777788889999", "--account", "111122223333")
    assert err == "launch refused: account sandbox (777788889999) has no complete collection\n"
    assert_no_campaign()


def test_a_due_date_not_in_the_future_is_refused(account, manager):
    today = timezone.localdate().isoformat()
    err = refused_launch(due_date=today)
    assert err == f"launch refused: the due date {today} is not in the future\n"
    assert_no_campaign()


@pytest.mark.parametrize("bad", ["2026-13-01", "tomorrow", "01/12/2026"])
def test_a_due_date_that_is_no_date_is_named(account, manager, bad):
    with pytest.raises(CommandError) as error:
        launch_campaign(due_date=bad)
    assert str(error.value) == f"--due: {bad!r} is not a date (YYYY-MM-DD)"
    assert_no_campaign()


def test_an_owner_who_is_unknown_or_not_a_manager_is_named(account, reviewer):
    with pytest.raises(CommandError) as error:
        launch_campaign(owner="nobody")
    assert str(error.value) == "--owner: no user 'nobody'"
    with pytest.raises(CommandError) as error:
        launch_campaign(owner="rita.reviewer")
    assert str(error.value) == "--owner: rita.reviewer is not a campaign manager"
    assert_no_campaign()


def test_accounts_that_do_not_exist_are_named(account, manager):
    with pytest.raises(CommandError) as error:
        launch_campaign("--account", "999999999999", "--account", "111122223333", "--account", "42")
    assert str(error.value) == "--account: no account 999999999999, 42"
    assert_no_campaign()


def test_a_launch_without_its_required_options_is_refused(manager):
    with pytest.raises(CommandError, match="--name, --due, --owner"):
        call_command("launch_campaign", stdout=io.StringIO(), stderr=io.StringIO())


# close_campaign --------------------------------------------------------------------------------


def close_campaign(campaign_id) -> str:
    out = io.StringIO()
    call_command("close_campaign", str(campaign_id), stdout=out)
    return out.getvalue()


def test_close_applies_the_default_outcome_and_says_what_it_gave(campaign):
    out = close_campaign(campaign.uuid)

    assert out == "Closed 2026 Q4 access review; default outcome: 6 keep, 6 reduce\n"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert not campaign.items.filter(decision="").exists()
    event = AuditEvent.objects.get(action="campaign.closed")
    assert event.actor_name == "system"


def test_closing_a_campaign_whose_items_are_all_decided_gives_no_default(
    account, reviewer, manager
):
    campaign = launched(manager, [account])
    decide_many(list(campaign.items.all()), reviewer, Choice("revoke", "Gone."))
    assert close_campaign(campaign.uuid) == (
        f"Closed {campaign.name}; default outcome: no open item\n"
    )


@pytest.mark.parametrize("unknown", [uuid.uuid4(), "not-an-id", "12"])
def test_closing_an_unknown_campaign_is_refused_naming_the_id(db, unknown):
    with pytest.raises(CommandError) as error:
        close_campaign(unknown)
    assert str(error.value) == f"no campaign {unknown}"


def test_a_campaign_closes_once(campaign):
    close_campaign(campaign.uuid)
    with pytest.raises(CommandError) as error:
        close_campaign(campaign.uuid)
    assert str(error.value) == "2026 Q4 access review: The campaign is not open."
    assert AuditEvent.objects.filter(action="campaign.closed").count() == 1
