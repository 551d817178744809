"""Outgoing webhooks, end to end: a launch, an overdue campaign, a sign-off and a failed
remediation reach a real HTTP receiver, signed; a receiver that fails is tried again with
back-off and given up in the end; nothing is sent for a change that did not commit."""

import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from audit import webhooks
from audit.models import AuditEvent, Webhook, WebhookDelivery
from audit.tasks import deliver_webhook, sweep_webhooks
from reviews import remediate
from reviews.decide import Choice, close, decide_many, sign_off
from reviews.models import Campaign, Decision, Remediation, Reminder
from reviews.reminders import send_due_reminders
from tests.reviews.builders import launched, settled

PASSWORD = "correct horse battery staple"  # every factory user's


class Receiver:
    """An HTTP server on loopback that records what it is sent and answers `statuses` in turn
    (the last one from then on)."""

    def __init__(self, statuses=(204,)):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/attest"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [json.loads(r["body"])["event"] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def _hook(url, events=tuple(webhooks.EVENTS), **fields) -> Webhook:
    return Webhook.objects.create(name="ticketing", url=url, events=list(events), **fields)


def test_a_launch_reaches_the_receiver_signed(
    receiver, account, manager, django_capture_on_commit_callbacks
):
    hook = _hook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        campaign = launched(manager, [account])

    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    expected = webhooks.signature(hook.secret, headers["X-Attest-Timestamp"], body)
    assert hmac.compare_digest(headers["X-Attest-Signature"], expected)
    assert headers["X-Attest-Event"] == "campaign.launched"
    sent = json.loads(body)
    delivery = WebhookDelivery.objects.get()
    assert sent["id"] == headers["X-Attest-Delivery"] == str(delivery.uuid)
    assert sent["object"]["id"] == str(campaign.uuid)
    assert sent["object"]["url"].endswith(campaign.get_absolute_url())
    assert sent["data"]["items"] == campaign.item_count
    event = AuditEvent.objects.get(action="campaign.launched")
    assert sent["audit_event"] == {"id": event.pk, "hash": event.hash}
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 204)


def test_only_the_events_asked_for_and_only_to_active_webhooks(
    receiver, account, manager, django_capture_on_commit_callbacks
):
    _hook(receiver.url, events=["campaign.signed_off"])
    _hook(receiver.url, active=False)
    with django_capture_on_commit_callbacks(execute=True):
        launched(manager, [account])
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


def test_a_change_that_rolls_back_sends_nothing(
    receiver, account, manager, django_capture_on_commit_callbacks
):
    _hook(receiver.url)

    def launch_then_fail():
        with transaction.atomic():
            launched(manager, [account])
            raise RuntimeError("the request failed after the launch")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        launch_then_fail()
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()
    assert not Campaign.objects.exists()


def test_an_overdue_campaign_is_told_once_a_day_with_who_is_behind(
    receiver, account, other_account, manager, reviewer, django_capture_on_commit_callbacks
):
    _hook(receiver.url, events=["items.overdue"])
    campaign = launched(manager, [account, other_account])
    manager.email = ""  # no escalation e-mail can go: the webhook is told all the same
    manager.save()
    first_overdue_day = campaign.due_date + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        send_due_reminders(first_overdue_day)
        send_due_reminders(first_overdue_day)

    assert receiver.events() == ["items.overdue"]
    data = json.loads(receiver.requests[0]["body"])["data"]
    assert data["undecided"] == campaign.item_count == 12
    assert data["undecided_by_reviewer"] == {"rita.reviewer": 6}
    assert data["without_active_reviewer"] == 6
    assert Reminder.objects.get().kind == Reminder.Kind.OVERDUE


def test_a_sign_off_and_a_failed_remediation_are_told(
    receiver, account, manager, reviewer, django_capture_on_commit_callbacks
):
    _hook(receiver.url, events=["campaign.signed_off", "remediation.failed"])
    campaign = launched(manager, [account])
    Campaign.objects.filter(pk=campaign.pk).update(
        rules={**campaign.rules, "remediation_dry_run": True}
    )
    items = list(campaign.items.filter(reviewer=reviewer))
    decide_many(items[:1], reviewer, Choice("revoke", "Left the team."))
    decide_many(items[1:], reviewer, Choice("keep", "Still needed."))
    with django_capture_on_commit_callbacks(execute=True):
        close(campaign, by=manager)
    remediation = Remediation.objects.get()
    Remediation.objects.filter(pk=remediation.pk).update(state=Remediation.State.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        remediate.abandon(remediation.pk)
        settled(campaign, manager)
        campaign.refresh_from_db()
        sign_off(campaign, manager, PASSWORD, "Reviewed and complete.")

    assert receiver.events() == ["remediation.failed", "campaign.signed_off"]
    failed = json.loads(receiver.requests[0]["body"])
    assert failed["object"]["id"] == str(remediation.uuid)
    assert Decision.objects.count() == len(items)


def test_a_failing_receiver_is_tried_again_with_back_off_then_given_up(
    account, manager, django_capture_on_commit_callbacks, eager_retries
):
    failing = Receiver(statuses=(500,))
    try:
        _hook(failing.url)
        with django_capture_on_commit_callbacks(execute=True):
            launched(manager, [account])
        delivery = WebhookDelivery.objects.get()
        # In-process, the task's retries run at once; each is counted on the delivery.
        assert delivery.state == WebhookDelivery.State.FAILED
        assert delivery.attempts == webhooks.MAX_ATTEMPTS == len(failing.requests)
        assert (delivery.last_status, delivery.last_error) == (
            500,
            "HTTP 500 Internal Server Error",
        )
        # Every attempt is the same delivery, which the receiver can tell by its id.
        assert {r["headers"]["X-Attest-Delivery"] for r in failing.requests} == {str(delivery.uuid)}
    finally:
        failing.close()


def test_back_off_doubles_to_half_an_hour():
    waits = [webhooks.backoff(n).total_seconds() for n in range(1, 9)]
    assert waits == [30, 60, 120, 240, 480, 960, 1800, 1800]


def test_a_receiver_that_recovers_gets_the_delivery(account, manager, eager_retries):
    flaky = Receiver(statuses=(503, 502, 200))
    try:
        _hook(flaky.url)
        with transaction.atomic():
            launched(manager, [account])
        delivery = WebhookDelivery.objects.get()
        deliver_webhook.delay(delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts) == ("delivered", 3)
    finally:
        flaky.close()


def test_an_unreachable_receiver_is_an_error_with_its_reason(account, manager):
    _hook("http://127.0.0.1:9/nobody-listens")
    launched(manager, [account])
    delivery = webhooks.attempt(WebhookDelivery.objects.get().pk)
    assert delivery.state == WebhookDelivery.State.PENDING
    assert delivery.last_status is None
    assert "refused" in delivery.last_error.lower()
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)


def test_the_sweeper_sends_a_delivery_whose_retry_was_lost(receiver, account, manager):
    _hook(receiver.url)
    launched(manager, [account])  # committed, but its task never ran (a broker restart)
    delivery = WebhookDelivery.objects.get()
    sweep_webhooks.delay()
    assert receiver.requests == []  # not yet late enough to count as lost
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=11)
    )
    sweep_webhooks.delay()
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert len(receiver.requests) == 1
