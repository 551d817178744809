"""The Jinja2 templates (config/jinja2.py) show values as Django's templates do, byte for byte:
escaped with Django's entities, localised, dates in the reader's language and time zone, and
sentences filled as {% blocktranslate %} fills them."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import jinja2
import pytest
from django.template import engines
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

MOMENT = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def django(source, **context):
    return engines["django"].from_string(source).render(context)


def jinja(source, **context):
    return engines["jinja2"].from_string(source).render(context)


VALUES = [
    "plain",
    "Tom & Jerry <b>\"quoted\" 'single'</b>",
    mark_safe("<em>safe</em>"),
    gettext_lazy("Keep"),
    12345,
    Decimal("1234.5"),
    1.5,
    None,
    True,
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    MOMENT,
    date(2026, 3, 1),
    ["a&b"],
    "",
]


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_shows_as_django_shows_it(value, language):
    with translation.override(language), timezone.override("Asia/Tokyo"):
        assert jinja("{{ value }}", value=value) == django("{{ value }}", value=value)


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize(
    "format_name", ["c", "SHORT_DATE_FORMAT", "SHORT_DATETIME_FORMAT", "Y-m-d"]
)
def test_dates_follow_the_language_and_time_zone_as_djangos_date_filter(language, format_name):
    with translation.override(language), timezone.override("Asia/Tokyo"):
        # Django's filter refuses a time's format for a date; so does this one, not tested here.
        days = [] if "TIME" in format_name else [date(2026, 3, 1)]
        for value in (MOMENT, *days, None, ""):
            assert jinja(f"{{{{ value|date('{format_name}') }}}}", value=value) == django(
                f'{{{{ value|date:"{format_name}" }}}}', value=value
            )
    with translation.override("ja"), timezone.override("Asia/Tokyo"):
        # The next day in Tokyo, written as Japanese readers write dates.
        assert jinja("{{ value|date('SHORT_DATE_FORMAT') }}", value=MOMENT) == "2026/03/02"


def test_a_whole_number_is_grouped_when_the_settings_group_numbers(settings):
    settings.USE_THOUSAND_SEPARATOR = True
    with translation.override("en"):
        assert jinja("{{ value }}", value=12345) == django("{{ value }}", value=12345) == "12,345"


@pytest.mark.parametrize("language", ["en", "ja"])
def test_iso_writes_the_moment_as_djangos_c_format(language):
    with translation.override(language), timezone.override("Asia/Tokyo"):
        assert jinja("{{ value|iso }}", value=MOMENT) == django(
            '{{ value|date:"c" }}', value=MOMENT
        )
        assert jinja("{{ value|iso }}", value=MOMENT) == "2026-03-02T08:30:00+09:00"


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_sentence_is_filled_as_blocktranslate_fills_it(language):
    value = "<b>x's</b>"
    with translation.override(language):
        expected = django(
            "{% load i18n %}{% blocktranslate with day=value %}until {{ day }}"
            "{% endblocktranslate %}",
            value=value,
        )
        text = translation.gettext("until %(day)s")
        assert jinja("{{ text|fill(day=value) }}", text=text, value=value) == expected
    assert jinja("{{ text|fill(day=value) }}", text="<i>%(day)s</i>", value=value) == (
        "<i>&lt;b&gt;x&#x27;s&lt;/b&gt;</i>"
    )


def test_autoescaping_is_on_and_a_misspelt_name_fails():
    assert jinja("{{ value }}", value="<script>") == "&lt;script&gt;"
    with pytest.raises(jinja2.UndefinedError):
        jinja("{{ vaule }}", value="x")
