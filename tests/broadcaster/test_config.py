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
        ('[http]\nallowed_hosts = ["*"]\n', {}, "http.allowed_hosts"),  # a wildcard would let any name rebind
        ("", {"LOA_HTTP_ALLOWED_HOSTS": "loa.local:8080"}, "http.allowed_hosts [LOA_HTTP_ALLOWED_HOSTS]"),
        ('[http]\npublic_url = "loa.xa.vn"\n', {}, "http.public_url"),
        ('[http]\naudio_url = "ftp://x"\n', {}, "http.audio_url"),
        ('[security]\nemergency_roles = ["officer", "boss"]\n', {}, "security.emergency_roles"),
        ("[security]\nemergency_roles = []\n", {}, "security.emergency_roles"),
        ("", {"LOA_SECURITY_LOGIN_FAILURES": "0"}, "security.login_failures"),
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


def test_the_names_the_api_answers_to() -> None:
    default = load_config(None, environ={}).http
    assert default.api_hosts() == {"127.0.0.1", "localhost", "::1"} and not default.secure_cookies
    proxied = load_config(None, environ={"LOA_HTTP_PUBLIC_URL": "https://Loa.Xa-Mau.gov.vn/"}).http
    assert "loa.xa-mau.gov.vn" in proxied.api_hosts() and proxied.secure_cookies
    everywhere = load_config(None, environ={"LOA_HTTP_HOST": "0.0.0.0"}).http
    assert "0.0.0.0" not in everywhere.api_hosts()  # bound everywhere names no host
    listed = load_config(None, environ={"LOA_HTTP_ALLOWED_HOSTS": "192.168.1.10, LOA.local,[::1]"}).http
    assert listed.api_hosts() == {"192.168.1.10", "loa.local", "::1"}  # exactly those
    roles = load_config(None, environ={"LOA_SECURITY_EMERGENCY_ROLES": "admin"}).security
    assert roles.emergency_roles == ["admin"]

