"""Outgoing webhooks: chosen audit events, sent as signed JSON to the addresses that asked.

A delivery is written in the transaction of the event it tells of, so the change, its audit
event and the promise to tell of it commit together; the task that sends it is queued once they
have. A delivery is tried until the receiver answers 2xx, with back-off, and given up after
MAX_ATTEMPTS; the sweeper queues again one whose retry was lost (a broker restart). Delivery is
at least once: the receiver tells repeats apart by `X-Attest-Delivery`.

Each request carries `X-Attest-Signature: sha256=<hex>`, the HMAC-SHA256 with the webhook's
secret of `<X-Attest-Timestamp>.<body>`: the receiver recomputes it, compares in constant time,
and refuses a timestamp more than a few minutes old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent, Webhook, WebhookDelivery

# The events a webhook can ask for, and the audit actions that raise them.
EVENTS = {
    "campaign.launched": _("A campaign was launched"),
    "items.overdue": _("A campaign is past its due date with undecided items"),
    "campaign.signed_off": _("A campaign was signed off"),
    "remediation.failed": _("A revocation failed in AWS"),
}
_ACTIONS = {
    "campaign.launched": "campaign.launched",
    "campaign.overdue": "items.overdue",
    "campaign.signed_off": "campaign.signed_off",
    "remediation.failed": "remediation.failed",
}
MAX_ATTEMPTS = 8
# A delivery whose retry is this late was lost by the broker: the sweeper queues it again.
LOST_AFTER = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from 30 seconds, at most 30 minutes."""
    return timedelta(seconds=min(1800, 30 * 2 ** (attempts - 1)))


def queue(event: AuditEvent, obj=None) -> None:
    """Called by `record()` in the event's transaction: a delivery for each webhook that asked
    for the event, sent once the transaction commits."""
    name = _ACTIONS.get(event.action)
    if name is None:
        return
    hooks = [hook for hook in Webhook.objects.filter(active=True) if name in hook.events]
    if not hooks:
        return
    from audit.tasks import deliver_webhook

    body = payload(event, name, obj)
    for hook in hooks:
        delivery = WebhookDelivery.objects.create(
            webhook=hook, event=event, name=name, payload=body
        )
        transaction.on_commit(partial(deliver_webhook.delay, delivery.pk))


def payload(event: AuditEvent, name: str, obj=None) -> dict:
    subject = {"type": event.object_type, "name": event.object_repr}
    if getattr(obj, "uuid", None) is not None:
        subject["id"] = str(obj.uuid)
    if hasattr(obj, "get_absolute_url"):
        subject["url"] = settings.SITE_URL.rstrip("/") + obj.get_absolute_url()
    return json.loads(
        json.dumps(
            {
                "event": name,
                "occurred_at": event.occurred_at,
                "actor": event.actor_name,
                "object": subject,
                "data": event.after,
                "audit_event": {"id": event.pk, "hash": event.hash},
            },
            cls=DjangoJSONEncoder,
        )
    )


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer other than 2xx: tried again later


_opener = urllib.request.build_opener(_NoRedirects)


def send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the delivery once; its HTTP status (None if none came) and what went wrong."""
    body = json.dumps({"id": str(delivery.uuid), **delivery.payload}).encode()
    timestamp = str(int(timezone.now().timestamp()))
    request = urllib.request.Request(  # noqa: S310 - the administrator's URL, http(s) only
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Attest-Webhooks/1",
            "X-Attest-Event": delivery.name,
            "X-Attest-Delivery": str(delivery.uuid),
            "X-Attest-Timestamp": timestamp,
            "X-Attest-Signature": signature(delivery.webhook.secret, timestamp, body),
        },
    )
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        return None, str(exc)[:500] or type(exc).__name__


def attempt(delivery_id: int) -> WebhookDelivery | None:
    """Try a pending delivery once and write down how it went; None if it is not pending."""
    delivery = (
        WebhookDelivery.objects.select_related("webhook")
        .filter(pk=delivery_id, state=WebhookDelivery.State.PENDING)
        .first()
    )
    if delivery is None:
        return None
    status, error = send(delivery)
    delivery.attempts += 1
    delivery.last_status = status
    delivery.last_error = error
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = now
        delivery.last_error = ""
    elif delivery.attempts >= MAX_ATTEMPTS or not delivery.webhook.active:
        delivery.state = WebhookDelivery.State.FAILED
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(
        update_fields=[
            "attempts",
            "last_status",
            "last_error",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    return delivery


def lost() -> list[int]:
    """Pending deliveries whose retry is long overdue."""
    return list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, next_attempt_at__lt=timezone.now() - LOST_AFTER
        ).values_list("pk", flat=True)
    )
