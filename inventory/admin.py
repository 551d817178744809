from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from inventory.accounts import save_account
from inventory.models import AwsAccount, CollectionRun


@admin.register(AwsAccount)
class AwsAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "account_id", "mode", "active", "owner", "organization_state"]
    list_filter = ["mode", "active"]
    search_fields = ["name", "account_id"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["current_run", "organization_state", "created_at"]

    def save_model(self, request, obj, form, change):
        save_account(obj, actor=request.user)


@admin.register(CollectionRun)
class CollectionRunAdmin(ReadOnlyAdmin):
    """Runs are written by collections and imports only: the admin shows them, never edits."""

    list_display = ["account", "source", "status", "started_at", "finished_at", "requested_by_name"]
    list_filter = ["status", "source"]
    list_select_related = ["account"]
    search_fields = ["account__account_id", "account__name"]
