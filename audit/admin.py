from django import forms
from django.contrib import admin
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from audit.models import Webhook, WebhookDelivery
from audit.trail import record
from audit.webhooks import EVENTS


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=2000,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
    )
    events = forms.MultipleChoiceField(
        label=_("events"), choices=list(EVENTS.items()), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "events", "active"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """Administrators choose where events go; every change of a webhook is in the audit trail."""

    form = WebhookForm
    list_display = ["name", "url", "active", "created_at"]
    list_filter = ["active"]
    fields = ["name", "url", "events", "active", "secret"]
    # Made with the webhook; shown here for the receiver, never typed in.
    readonly_fields = ["secret"]

    def save_model(self, request, obj, form, change):
        state = {"name": obj.name, "url": obj.url, "events": obj.events, "active": obj.active}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            record("webhook.changed" if change else "webhook.created", obj, after=state)

    def delete_model(self, request, obj):
        with transaction.atomic():
            record("webhook.deleted", obj, before={"name": obj.name, "url": obj.url})
            super().delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows Attest writes itself: the admin shows them, never adds, edits or deletes."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """What was sent where, and how it went: written by the deliveries only."""

    list_display = ["created_at", "name", "webhook", "state", "attempts", "last_status"]
    list_filter = ["state", "name", "webhook"]
    list_select_related = ["webhook"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
