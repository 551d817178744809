"""Words for what items hold as codes: reasons, caveats and privileges, in the reader's language."""

from django import template

from inventory import policies
from reviews import recommend

register = template.Library()


@register.filter
def describe_reason(reason):
    """A recommendation's reason or a caveat (a dict frozen on the item) in plain words."""
    return recommend.describe(reason) if reason else ""


@register.filter
def describe_privilege(reason):
    return policies.describe(reason) if reason else ""
