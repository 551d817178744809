from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from audit.trail import record
from reviews.models import CampaignDefinition, ReviewerAssignment, StageRule


class StageRuleInline(admin.TabularInline):
    model = StageRule
    extra = 0
    max_num = 2


class ReviewerAssignmentInline(admin.TabularInline):
    model = ReviewerAssignment
    extra = 0


@admin.register(CampaignDefinition)
class CampaignDefinitionAdmin(admin.ModelAdmin):
    """Administrators define campaigns here; managers launch them from the campaigns page."""

    list_display = ["name", "cadence", "owner", "active", "review_days", "unused_days"]
    list_filter = ["cadence", "active"]
    filter_horizontal = ["accounts"]
    inlines = [StageRuleInline, ReviewerAssignmentInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "owner", "active"]}),
        (
            _("Scope"),
            {
                "fields": [
                    "accounts",
                    ("include_users", "include_groups", "include_roles"),
                    "privileged_only",
                    "tag_filters",
                ]
            },
        ),
        (_("Timing"), {"fields": ["cadence", "review_days", "reminder_days", "max_data_age_days"]}),
        (
            _("Rules"),
            {
                "fields": [
                    "unused_days",
                    "owner_tag",
                    "fallback_reviewer",
                    "reason_for_privileged_keep",
                    "reason_for_unused_keep",
                    "reason_for_revoke",
                    "default_outcome",
                ]
            },
        ),
        (
            _("Remediation"),
            {"fields": ["remediation_start", "remediation_dry_run", "key_grace_days"]},
        ),
    ]

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            record(
                "definition.changed" if change else "definition.added",
                form.instance,
                actor=request.user,
                after=form.instance.rules(),
            )
