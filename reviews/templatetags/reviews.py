"""Words for what items hold as codes: reasons, caveats and privileges, in the reader's language;
and the queue's rows."""

from functools import lru_cache

from django import template
from django.template import engines
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from inventory import policies
from inventory.models import Principal, Right
from reviews import recommend
from reviews.models import Recommendation, ReviewItem

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
        # Sentences with a value in them, filled in the row as {% blocktranslate %} would.
        "until": _("until %(day)s"),
        "stage": _("Stage %(stage)s"),
        "now_with": _("Now with %(user)s"),
    }


@lru_cache(maxsize=32)
def _choice_labels(language: str | None) -> dict[str, dict[str, str]]:
    """The labels of the choices a row shows, by field and value, translated once for each
    language: each `get_..._display()` translates its label again, four times a row. A value no
    longer a choice shows as it is, as those methods show it."""
    # `language` is the active one, named only to key the cache.
    fields = {
        "principal_kind": Principal.Kind,
        "right_kind": Right.Kind,
        "recommendation": Recommendation,
        "decision": ReviewItem.Decision,
    }
    return {
        field: {value: str(label) for value, label in choices.choices}
        for field, choices in fields.items()
    }


# What a row shows of a refused decision, and whether it is swapped in out of band: the
# template's context says, unless the tag does.
ROW_STATE = {
    "row_error": None,
    "reason_open": False,
    "pending": "",
    "reason": "",
    "row_oob": False,
}


@register.simple_tag(takes_context=True)
def queue_rows(context, items, **state) -> SafeString:
    """The queue's rows, rendered by Jinja2 (templates/jinja2/reviews/queue_rows.html): Django's
    template engine took half of a queue page's time over its fifty rows of forms. The HTML is
    the same as Django's would be; `state` is ROW_STATE's, else taken from the context."""
    request = context.get("request")
    csrf_token = context.get("csrf_token")
    language = get_language()
    row = {name: state.get(name, context.get(name, default)) for name, default in ROW_STATE.items()}
    html = (
        engines["jinja2"]
        .get_template("reviews/queue_rows.html")
        .render(
            {
                "items": items,
                "texts": _queue_row_texts(language),
                "labels": _choice_labels(language),
                "chosen": context.get("chosen") or (),
                "next": context.get("next") or "",
                "user_pk": request.user.pk if request else None,
                "csrf_token": str(csrf_token) if csrf_token else "",
                **row,
            }
        )
    )
    return SafeString(html)


@register.simple_tag(takes_context=True)
def queue_row(context, item, **state) -> SafeString:
    """One row of the queue (after a decision, or out of band beside the item's panel)."""
    return queue_rows(context, [item], **state)


@register.filter
def describe_reason(reason):
    """A recommendation's reason or a caveat (a dict frozen on the item) in plain words."""
    return recommend.describe(reason) if reason else ""


@register.filter
def describe_privilege(reason):
    return policies.describe(reason) if reason else ""
