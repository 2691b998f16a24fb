"""The desk's words: the same keys in every language, and every key a template or a route names."""

from __future__ import annotations

import re
from pathlib import Path

from broadcaster.messages import LANGUAGES
from broadcaster.web import page as web_page
from broadcaster.web.i18n import STRINGS, translate
from broadcaster.web.nav import NAV

WEB = Path(web_page.__file__).parent
NAMED = re.compile(r"""\bt\(\s*['"]([a-z0-9_]+\.[a-z0-9_.]*[a-z0-9_])['"]\s*[,)]""")  # t('nav.home'), t("a.b", x=1)


def test_every_language_has_the_same_keys_and_placeholders() -> None:
    assert set(STRINGS) == set(LANGUAGES)
    vi = STRINGS["vi"]
    for lang in LANGUAGES:
        assert set(STRINGS[lang]) == set(vi), (lang, set(STRINGS[lang]) ^ set(vi))
        for key, text in STRINGS[lang].items():
            assert sorted(re.findall(r"{(\w+)}", text)) == sorted(re.findall(r"{(\w+)}", vi[key])), (lang, key)


def test_every_key_the_templates_and_routes_name_is_in_the_catalogue() -> None:
    sources = [*WEB.glob("templates/**/*.html"), *WEB.glob("**/*.py")]
    named = {key for path in sources for key in NAMED.findall(path.read_text(encoding="utf-8"))}
    assert len(named) > 50  # the reader finds them
    missing = sorted(k for k in named if k not in STRINGS["vi"])
    assert not missing, missing
    menu = {f"nav.{e.key}" for e in NAV}
    assert menu <= set(STRINGS["vi"]), menu - set(STRINGS["vi"])


def test_words_are_filled_and_fall_back_to_vietnamese() -> None:
    assert translate("vi", "airing.played", played=41, total=43) == "41/43 loa đã phát"
    assert translate("en", "airing.played", played=41, total=43) == "41/43 speakers played"
    assert translate("fr", "nav.home") == "Trang chính"
