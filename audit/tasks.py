from celery import shared_task

from audit import trail, webhooks
from audit.models import WebhookDelivery


@shared_task
def checkpoint() -> None:
    """Beat: sign the head of the audit chain."""
    trail.checkpoint()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> str:
    """Send one webhook delivery; tried again later, with back-off, until it is delivered or
    given up (the delivery's row counts the attempts, whichever worker makes them)."""
    delivery = webhooks.attempt(delivery_id)
    if delivery is None:
        return "not pending"
    if delivery.state == WebhookDelivery.State.PENDING:
        raise self.retry(countdown=webhooks.backoff(delivery.attempts).total_seconds())
    return delivery.state


@shared_task
def sweep_webhooks() -> None:
    """Beat: queue again the deliveries whose retry the broker lost."""
    for delivery_id in webhooks.lost():
        deliver_webhook.delay(delivery_id)
