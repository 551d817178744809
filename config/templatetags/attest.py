import json
from datetime import timedelta

from django import template
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
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


@register.filter
def iso_day(value):
    """A date or moment frozen as ISO 8601 text (an item's facts), as the reader writes dates."""
    try:
        moment = parse_datetime(value) if value else None
    except (TypeError, ValueError):
        moment = None
    if moment is None:
        return value or ""
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return formats.date_format(moment.date(), "SHORT_DATE_FORMAT")


@register.filter
def duration(value):
    """A timedelta or a number of seconds as people read it: 45 s, 3 min 20 s, 2 h 5 min."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 60:
        return _("%(seconds)d s") % {"seconds": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": seconds}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
