"""The Jinja2 environment of the few templates Django's template engine renders too slowly: the
queue's rows, fifty a page (templates/jinja2/). Every other template is Django's.

What these templates show must read as if Django had rendered it, byte for byte: values are
localised and escaped as Django's templates do (`finalize`), dates follow the reader's language
as Django's `date` filter does, and words come from Python's gettext calls: makemessages cannot
read Jinja2's own tags (these templates hold no words of their own, as
tests/config/test_translation.py checks).
"""

from __future__ import annotations

import html

import jinja2
from django.conf import settings
from django.template.defaultfilters import date as django_date
from django.utils.formats import localize
from django.utils.functional import Promise
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from config.templatetags.attest import days_ago
from reviews.templatetags.reviews import describe_reason


def environment(**options) -> jinja2.Environment:
    # Escaped whatever the settings say; a name a template misspells fails its render (and its
    # test) rather than showing nothing.
    options.pop("autoescape", None)
    options["undefined"] = jinja2.StrictUndefined
    env = jinja2.Environment(**options, autoescape=True, finalize=shown)
    env.filters.update(
        date=date, days_ago=days_ago, describe_reason=describe_reason, fill=fill, iso=iso
    )
    return env


def shown(value):
    """A value as a Django template shows it: in the current time zone, localised, escaped with
    Django's own entities. Jinja2 escapes what this leaves as plain text, alike but for quotes
    (Jinja2 writes &#34; and &#39;, Django &quot; and &#x27;): text with quotes is escaped here.
    Text, the most of a row, goes the short way: the rest as Django's templates would."""
    if type(value) is str:
        return _django_escaped(value) if ('"' in value or "'" in value) else value
    if type(value) is int and not settings.USE_THOUSAND_SEPARATOR:
        return str(value)  # what `localize` makes of a whole number without grouping
    if hasattr(value, "__html__"):
        return value
    if isinstance(value, Promise):
        return shown(str(value))
    return conditional_escape(localize(template_localtime(value)))


def _django_escaped(text: str) -> SafeString:
    # django.utils.html.escape without its check for lazy text, which `shown` has made plain.
    return SafeString(html.escape(text))


def date(value, format_name=None):
    """Django's `date` filter, which Django's templates give the moment in local time."""
    return django_date(template_localtime(value), format_name)


def iso(value) -> str:
    """`date('c')` without Django's format machinery: the moment in local time, ISO 8601."""
    return template_localtime(value).isoformat()


def fill(text, **values):
    """A translated sentence with its placeholders filled, as `{% blocktranslate %}` does: the
    sentence as translated, the values escaped."""
    return SafeString(text % {name: shown(value) for name, value in values.items()})
