"""Every word a user reads goes through translation, and the Japanese catalogue has them all.

The template check reads each template as Django's own lexer does, drops what is inside
translation tags, and looks at what is left the way a browser shows it: text nodes and the
attributes people read (title, aria-label, placeholder, alt, a submit button's value). The
few Jinja2 templates (templates/jinja2/) are read by Jinja2's lexer: makemessages cannot read
their tags, so they show no words of their own at all, only values (words from Python's gettext
calls). The catalogue checks find the messages the way makemessages does (Django's templatize for
templates, the gettext calls for Python) without needing GNU gettext.
"""

import ast
import os
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template, engines
from django.template.base import Lexer, TokenType
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from reviews.launch import launch, new_campaign

ROOT = settings.BASE_DIR
TEMPLATES_DIR = ROOT / "templates"
JINJA2_DIR = ROOT / "templates" / "jinja2"
PO_FILE = ROOT / "locale" / "ja" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")
# What makemessages is told to --ignore, so both find the same messages.
NOT_SCANNED = {".venv", "var", "test-artifacts", "tests", "locale", "node_modules", ".git"}

# Names and technical tokens that read the same in every language.
ALLOWED_WORDS = {"Attest", "AWS", "ARN", "IAM", "JSON", "CSV", "ZIP", "htmx", "SHA", "UTC"}
# Attributes a person reads or hears; a submit button's value is checked on its own.
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
# Elements whose content is code or key names, not prose.
UNREAD_ELEMENTS = {"script", "style", "kbd"}
# Templates not marked yet; an entry goes once its template is marked.
NOT_YET_MARKED: set[str] = set()
# Markdown's code (fenced blocks and `inline code`): commands, file and key names.
MARKDOWN_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)

# Two letters or more: a lone letter is an icon ("i") or a key, never a sentence by itself.
WORD = re.compile(r"[A-Za-z][A-Za-z']+")
# Filters whose literal argument is shown as it is: `_("...")` is how such text is translated.
SHOWN_LITERAL = re.compile(
    r"""\|(?:default|default_if_none|yesno|add|join):(?P<quote>["'])(?P<text>.*?)(?P=quote)"""
)
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%[sdifr]")
GETTEXT_CALL = re.compile(r"\b(?:n?p?gettext|_)\(")
# xgettext's keywords as makemessages passes them: name -> positions of context, singular, plural.
KEYWORDS = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}


# Templates -------------------------------------------------------------------------------


class _Reader(HTMLParser):
    """Collects what a browser would show from HTML whose template parts are blanked out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.read = []
        self._unread = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        self.read.extend(
            (name, attributes[name]) for name in sorted(READ_ATTRIBUTES & {*attributes})
        )
        if tag == "input" and attributes.get("type") in {"submit", "button", "reset"}:
            self.read.append(("value", attributes.get("value", "")))
        if tag in UNREAD_ELEMENTS:
            self._unread.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in UNREAD_ELEMENTS:
            self._unread.pop()

    def handle_endtag(self, tag):
        if tag in self._unread:
            while self._unread.pop() != tag:
                pass

    def handle_data(self, data):
        if not self._unread:
            self.read.append(("text", data))


def _without_template_code(source):
    """The template with its tags, variables, comments and translated blocks blanked out.

    Also returns the text a filter shows as it is written, such as `default:"Nobody"`.
    """
    parts, shown = [], []
    until = None
    for token in Lexer(source).tokenize():
        if until:
            if token.token_type == TokenType.BLOCK and token.split_contents()[0] == until:
                until = None
            continue
        if token.token_type == TokenType.TEXT:
            parts.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.split_contents()[0]
            if name in {"blocktranslate", "blocktrans"}:
                until = "end" + name
            elif name == "comment":
                until = "endcomment"
        if token.token_type == TokenType.VAR:
            shown += [match["text"] for match in SHOWN_LITERAL.finditer(token.contents)]
        # A space, not nothing: a tag inside an attribute's value must not join two words.
        parts.append(" ")
    return "".join(parts), shown


def untranslated_text(source):
    """What a template shows outside translation tags, as (where, text) pairs."""
    html, shown = _without_template_code(source)
    return _words_read(html, shown)


def _words_read(html, shown=()):
    reader = _Reader()
    reader.feed(html)
    reader.close()
    found = []
    for where, text in [*reader.read, *(("filter", text) for text in shown)]:
        if any(word not in ALLOWED_WORDS for word in WORD.findall(text)):
            found.append((where, " ".join(text.split())))
    return found


def jinja2_text(source):
    """What a Jinja2 template shows of its own, outside its tags and expressions, as (where,
    text) pairs: all of it is a word makemessages would miss."""
    parts = [
        value if kind == "data" else " "
        for _, kind, value in engines["jinja2"].env.lex(source)
        if kind in {"data", "variable_begin", "block_begin", "comment_begin"}
    ]
    return _words_read("".join(parts))


def _templates():
    """Django's templates: every one but Jinja2's, which have a test of their own."""
    return sorted(
        path.relative_to(TEMPLATES_DIR).as_posix()
        for path in TEMPLATES_DIR.rglob("*.html")
        if not path.is_relative_to(JINJA2_DIR)
    )


@pytest.mark.parametrize("name", [name for name in _templates() if name not in NOT_YET_MARKED])
def test_template_shows_no_text_outside_translation_tags(name):
    found = untranslated_text((TEMPLATES_DIR / name).read_text())
    assert not found, f"templates/{name} shows text not marked for translation: {found}"


@pytest.mark.parametrize(
    "name", sorted(path.relative_to(JINJA2_DIR).as_posix() for path in JINJA2_DIR.rglob("*.html"))
)
def test_jinja2_template_shows_no_words_of_its_own(name):
    found = jinja2_text((JINJA2_DIR / name).read_text())
    assert not found, f"templates/jinja2/{name} shows words makemessages cannot find: {found}"


def test_the_jinja2_check_finds_words_in_text_and_attributes():
    source = """{# Comments are not shown #}{% for item in items %}
    <p title="Open {{ item.name }}">{{ texts.keep }} {{ item.count }} left</p>
    <button aria-label="{{ item.label }}">{% if item.ok %}Done{% endif %} · 12 <kbd>Esc</kbd>
    </button>
    {% endfor %}"""
    assert jinja2_text(source) == [("title", "Open"), ("text", "left"), ("text", "Done · 12")]


@pytest.mark.parametrize(
    "name",
    sorted(path.relative_to(TEMPLATES_DIR).as_posix() for path in TEMPLATES_DIR.rglob("*.md.txt")),
)
def test_markdown_template_shows_no_text_outside_translation_tags_but_code(name):
    source = MARKDOWN_CODE.sub(" ", (TEMPLATES_DIR / name).read_text())
    found = untranslated_text(source)
    assert not found, f"templates/{name} shows text not marked for translation: {found}"


def test_the_template_check_finds_unmarked_text_attributes_and_buttons():
    source = """{% load i18n %}
    <h1>{% translate "Campaigns" %}</h1>
    <p>{% blocktranslate with n=count %}{{ n }} items <b>left</b>{% endblocktranslate %}</p>
    {# Left for later #}{% comment %}Not shown{% endcomment %}
    <p>{{ campaign.name }} &middot; AWS <kbd>Esc</kbd> 12 <span aria-hidden="true">i</span></p>
    <p>{{ count }} reviews left</p>
    <a href="{% url 'home' %}" title="Go home">{% translate "Home" %}</a>
    <input type="search" placeholder="{% translate 'Search' %}" aria-label="Search">
    <input type="submit" value="Save">
    <img src="x.png" alt="{% if ok %}Done{% endif %}">
    <p>{{ owner|default:"Nobody" }} {{ reviewer|default:_("Nobody") }}</p>
    <p>{{ day|date:"SHORT_DATE_FORMAT" }} {{ names|join:", " }}</p>
    """
    assert untranslated_text(source) == [
        ("text", "reviews left"),
        ("title", "Go home"),
        ("aria-label", "Search"),
        ("value", "Save"),
        ("alt", "Done"),
        ("filter", "Nobody"),
    ]


def test_the_template_check_passes_a_fully_marked_template():
    source = """{% load i18n %}<nav aria-label="{% translate 'Pages' %}">
    <a href="?page={{ page.number }}" title="{% translate 'Next' %}">{% translate "Next" %} →</a>
    <span>{% blocktranslate with n=page.number %}Page {{ n }}{% endblocktranslate %}</span></nav>"""
    assert untranslated_text(source) == []


# The Japanese catalogue ------------------------------------------------------------------


def _po_string(line):
    """The text of one quoted .po string; its escapes are C's, which Python reads alike."""
    return ast.literal_eval(line[line.index('"') :])


def read_po(path):
    """The entries of a .po file, each a dict: msgctxt, msgid, msgid_plural, msgstr, flags."""
    entries, entry, field = [], None, None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        starts_entry = not line or (line.startswith("#") and entry and "msgid" in entry)
        if starts_entry and entry and "msgid" in entry:
            entries.append(entry)
            entry = None
        if not line:
            continue
        entry = entry or {"flags": set(), "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += _po_string(line)
            else:
                entry[field[0]] += _po_string(line)
        else:
            keyword = line.split(None, 1)[0]
            field = (
                ("msgstr", int(keyword[7:-1] or 0)) if keyword.startswith("msgstr") else (keyword,)
            )
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] = _po_string(line)
            else:
                entry[keyword] = _po_string(line)
    return entries


@pytest.fixture(scope="module")
def catalogue():
    """The header and the messages of the Japanese catalogue."""
    entries = read_po(PO_FILE)
    header = next(entry for entry in entries if entry["msgid"] == "")
    return header, [entry for entry in entries if entry["msgid"]]


def test_the_japanese_catalogue_has_one_plural_form(catalogue):
    header, _ = catalogue
    assert "Language: ja\n" in header["msgstr"][0]
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header["msgstr"][0]


def test_every_message_of_the_japanese_catalogue_is_translated(catalogue):
    _, messages = catalogue
    fuzzy = [entry["msgid"] for entry in messages if "fuzzy" in entry["flags"]]
    empty = [
        entry["msgid"]
        for entry in messages
        if set(entry["msgstr"]) != {0} or not entry["msgstr"][0].strip()
    ]
    assert not fuzzy, f"fuzzy in locale/ja: {fuzzy}"
    assert not empty, f"not translated in locale/ja (one msgstr, not empty): {empty}"


def test_japanese_translations_keep_every_placeholder(catalogue):
    _, messages = catalogue
    wrong = []
    for entry in messages:
        expected = {*PLACEHOLDER.findall(entry["msgid"])}
        expected |= {*PLACEHOLDER.findall(entry.get("msgid_plural", ""))}
        if {*PLACEHOLDER.findall(entry["msgstr"][0])} != expected:
            wrong.append((entry["msgid"], entry["msgstr"][0]))
    assert not wrong, f"placeholders differ in locale/ja: {wrong}"


def _translate(entry):
    if "msgid_plural" in entry:
        if "msgctxt" in entry:
            return translation.npgettext(entry["msgctxt"], entry["msgid"], entry["msgid_plural"], 2)
        return translation.ngettext(entry["msgid"], entry["msgid_plural"], 2)
    if "msgctxt" in entry:
        return translation.pgettext(entry["msgctxt"], entry["msgid"])
    return translation.gettext(entry["msgid"])


def test_the_compiled_catalogue_says_what_the_po_file_says(catalogue):
    """The shipped .mo answers every message as django.po does: compilemessages was run."""
    _, messages = catalogue
    assert MO_FILE.exists(), "run: manage.py compilemessages --ignore=.venv"
    with translation.override("ja"):
        stale = [entry["msgid"] for entry in messages if _translate(entry) != entry["msgstr"][0]]
    assert not stale, f"django.mo differs from django.po (compilemessages): {stale}"


def _calls(source):
    """(context, msgid, plural) of every gettext call with literal arguments in Python source."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in KEYWORDS:
            continue
        positions = KEYWORDS[name]
        args = [arg.value if isinstance(arg, ast.Constant) else None for arg in node.args]
        if len(args) <= max(p for p in positions if p is not None):
            continue
        context, msgid, plural = (None if p is None else args[p] for p in positions)
        if isinstance(msgid, str) and (positions[0] is None or isinstance(context, str)):
            yield context, msgid, plural


def _template_calls(source):
    """What makemessages finds in a template: Django's templatize turns it into gettext calls."""
    code = templatize(source)
    for match in GETTEXT_CALL.finditer(code):
        end = code.index(")", match.end())
        while True:
            try:
                yield from _calls(code[match.start() : end + 1])
                break
            except SyntaxError:
                end = code.index(")", end + 1)


def extracted_messages():
    """Every message in Attest's code and templates, as makemessages would extract it."""
    found = {}
    paths = []
    for folder, folders, files in os.walk(ROOT):
        folders[:] = sorted(name for name in folders if name not in NOT_SCANNED)
        paths += [Path(folder) / name for name in sorted(files)]
    for path in paths:
        if path.suffix not in {".py", ".html", ".txt"}:
            continue
        source = path.read_text(encoding="utf-8")
        calls = _calls(source) if path.suffix == ".py" else _template_calls(source)
        for context, msgid, plural in calls:
            if msgid:
                found.setdefault((context, msgid, plural), path.relative_to(ROOT).as_posix())
    return found


def test_every_message_in_the_code_is_in_the_japanese_catalogue(catalogue):
    _, messages = catalogue
    known = {
        (entry.get("msgctxt"), entry["msgid"], entry.get("msgid_plural")) for entry in messages
    }
    missing = [
        f"{where}: {msgid!r}"
        for (context, msgid, plural), where in extracted_messages().items()
        if (context, msgid, plural) not in known
    ]
    assert not missing, f"run makemessages and translate: missing from locale/ja: {missing}"


def test_the_extraction_reads_translate_tags_blocks_and_python_calls():
    template = (
        '{% load i18n %}{% translate "Due" %}{% translate "May" context "month" %}'
        "{% blocktranslate count n=items|length %}{{ n }} item{% plural %}{{ n }} items"
        "{% endblocktranslate %}{{ owner|default:_('Nobody') }}"
    )
    assert sorted(_template_calls(template), key=str) == sorted(
        [
            (None, "Due", None),
            ("month", "May", None),
            (None, "%(n)s item", "%(n)s items"),
            (None, "Nobody", None),
        ],
        key=str,
    )
    python = 'x = _("Keep") + ngettext("a day", "%(n)d days", n) + pgettext("verb", "Close")'
    assert sorted(_calls(python), key=str) == sorted(
        [(None, "Keep", None), (None, "a day", "%(n)d days"), ("verb", "Close", None)], key=str
    )


# Pages in Japanese -----------------------------------------------------------------------


def _ja(msgid):
    with translation.override("ja"):
        return translation.gettext(msgid)


def test_the_sign_in_page_follows_the_browsers_language(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")
    page = response.text
    assert '<html lang="ja">' in page
    assert _ja("Sign in to Attest") in page
    assert "Sign in to Attest" not in page
    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8").text
    assert '<html lang="en">' in english
    assert "Sign in to Attest" in english


def test_the_language_switch_in_the_header_outranks_the_browser(client, manager):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").text
    assert f'action="{reverse("set_language")}"' in page
    assert '<option value="ja" lang="ja">日本語</option>' in page

    response = client.post(reverse("set_language"), {"language": "ja", "next": reverse("login")})
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"

    client.force_login(manager)
    home = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").text
    assert '<html lang="ja">' in home
    assert _ja("Your campaigns") in home
    assert '<option value="ja" lang="ja" selected>日本語</option>' in home


def test_the_language_switch_refuses_a_next_page_elsewhere(client):
    response = client.post(
        reverse("set_language"), {"language": "ja", "next": "https://evil.example.com/"}
    )
    assert response.status_code == 302
    assert "evil.example.com" not in response["Location"]


def test_dates_are_written_as_the_readers_language_writes_them(client, manager, account):
    due = timezone.localdate() + timedelta(days=14)
    launch(new_campaign(name="Q4", owner=manager, due_date=due, accounts=[account]), by=manager)
    client.force_login(manager)

    japanese = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="ja").text
    english = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").text

    assert f">{due:%Y/%m/%d}</time>" in japanese
    assert f">{due:%Y-%m-%d}</time>" in english
    # The machine-readable date stays ISO 8601 in every language.
    assert f'datetime="{due:%Y-%m-%d}"' in japanese


def test_numbers_are_grouped_as_the_readers_language_groups_them():
    template = Template("{% load humanize %}{{ n|intcomma }} {{ x|floatformat:'1g' }}")
    with translation.override("ja"):
        assert template.render(Context({"n": 1234567, "x": 12345.67})) == "1,234,567 12,345.7"
    with translation.override("en"):
        assert template.render(Context({"n": 1234567, "x": 12345.67})) == "1,234,567 12,345.7"


def test_the_image_ships_the_compiled_catalogues():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY locale locale$", dockerfile, re.MULTILINE)


def test_iso_dates_frozen_on_items_are_written_as_the_reader_writes_dates():
    template = Template("{% load attest %}{{ moment|iso_day }}|{{ other|iso_day }}")
    context = Context({"moment": "2026-03-01T10:00:00+00:00", "other": "not a date"})
    with translation.override("ja"):
        assert template.render(context) == "2026/03/01|not a date"
    with translation.override("en"):
        assert template.render(context) == "2026-03-01|not a date"


def test_durations_are_written_in_the_readers_language():
    template = Template("{% load attest %}{{ a|duration }} · {{ b|duration }} · {{ c|duration }}")
    context = Context({"a": 42, "b": timedelta(minutes=3, seconds=20), "c": timedelta(hours=2)})
    with translation.override("ja"):
        assert template.render(context) == "42 秒 · 3 分 20 秒 · 2 時間 0 分"
    with translation.override("en"):
        assert template.render(context) == "42 s · 3 min 20 s · 2 h 0 min"


def test_a_collections_phase_is_shown_in_the_readers_language():
    run = {"phase": "Reading Access Advisor", "progress_total": 8, "progress_done": 3}
    with translation.override("ja"):
        assert "Access Advisor を読み込み中 · 3/8" in render_to_string(
            "inventory/partials/progress.html", {"run": run}
        )
        assert "待機中" in render_to_string("inventory/partials/progress.html", {"run": {}})
