from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_matches_defaults() -> None:
    cfg = load_config(ROOT / "config.example.toml", environ={})
    default = load_config(None, environ={})
    # The example documents the defaults: apart from the sample lexicon they must agree.
    assert cfg.model_dump(exclude={"speech": {"lexicon"}}) == default.model_dump(exclude={"speech": {"lexicon"}})
    assert cfg.speech.lexicon["TDP"] == "tổ dân phố"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    f = tmp_path / "loa.toml"
    f.write_text('[database]\nurl = "sqlite:///a.db"\n[http]\nport = 9000\n')
    cfg = load_config(f, environ={"LOA_DATABASE_URL": "postgresql+psycopg://x@y/z", "LOA_DISPATCH_LEAD_S": "12"})
    assert cfg.database_url == "postgresql+psycopg://x@y/z"
    assert cfg.dispatch.lead_s == 12.0
    assert cfg.http.port == 9000


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ('[speech]\nengine = "festival"\n', {}, "speech.engine [LOA_SPEECH_ENGINE]"),
        ("[http]\nport = 99999\n", {}, "http.port"),
        ('[broker]\nurl = "http://x"\n', {}, "broker.url"),
        ("[general]\ncolour = 1\n", {}, "general.colour"),
        ("", {"LOA_DISPATCH_LEAD_S": "soon"}, "dispatch.lead_s [LOA_DISPATCH_LEAD_S]"),
        ("", {"LOA_NOPE_X": "1"}, "LOA_NOPE_X"),
        ("[general\n", {}, "TOML"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    f = tmp_path / "loa.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, environ=env)
    assert needle in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="không tìm thấy"):
        load_config(tmp_path / "nope.toml", environ={})


def test_the_example_documents_every_key() -> None:
    import tomllib

    from broadcaster.config import Config

    example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    for section, model in Config.model_fields.items():
        assert section in example, section
        assert model.annotation is not None
        fields = set(model.annotation.model_fields)  # type: ignore[union-attr]
        assert fields == set(example[section]), (section, fields ^ set(example[section]))
