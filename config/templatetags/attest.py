import json

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)


@register.filter
def days_ago(moment):
    """'today', '3 days ago' or 'never', counted in whole days as access reviews count them."""
    if moment is None:
        return _("never")
    days = (timezone.now() - moment).days
    if days <= 0:
        return _("today")
    return ngettext("%(days)d day ago", "%(days)d days ago", days) % {"days": days}


@register.filter
def age_in_days(moment):
    if moment is None:
        return None
    return (timezone.now() - moment).days
