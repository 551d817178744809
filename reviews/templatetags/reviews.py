"""Words for what items hold as codes: reasons, caveats and privileges, in the reader's language."""

from functools import lru_cache

from django import template
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from inventory import policies
from reviews import recommend

register = template.Library()


@register.simple_tag
def queue_row_texts() -> dict[str, str]:
    """The fixed words of a queue row, translated once for each language rather than once for
    each row: a page of fifty rows looked each of them up fifty times, for a quarter of its
    rendering."""
    return _queue_row_texts(get_language())


@lru_cache(maxsize=32)
def _queue_row_texts(language: str | None) -> dict[str, str]:
    # `language` is the active one, named only to key the cache.
    return {
        "privileged": _("Privileged"),
        "never_used": _("never used"),
        "undecided": _("Undecided"),
        "keep": _("Keep"),
        "revoke": _("Revoke"),
        "reduce": _("Reduce…"),
        "recommended": _("recommended"),
        "reason_toggle": _("Reason…"),
        "reason": _("Reason"),
        "privileged_keep_needs_reason": _("Keeping a privileged right needs a reason."),
        "unused_keep_needs_reason": _("Keeping a right nobody used needs a reason."),
        "revoke_needs_reason": _("Revoking needs a reason in this campaign."),
        "keep_with_reason": _("Keep with this reason"),
        "revoke_with_reason": _("Revoke with this reason"),
        "cancel": _("Cancel"),
        "reason_keys": _("Enter records the decision; Shift+Enter starts a new line; Esc cancels."),
        "closed": _("The campaign is closed."),
        "no_reviewer": _("Now without a reviewer"),
    }


@register.filter
def describe_reason(reason):
    """A recommendation's reason or a caveat (a dict frozen on the item) in plain words."""
    return recommend.describe(reason) if reason else ""


@register.filter
def describe_privilege(reason):
    return policies.describe(reason) if reason else ""
