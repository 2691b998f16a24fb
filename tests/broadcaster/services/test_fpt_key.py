"""FPT.AI's key: from the environment or an owner-only file, never from the config file, never in a message."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from audio.engines import FallbackEngine
from audio.fpt import FptEngine
from broadcaster.config import Config, ConfigError, load_config
from broadcaster.errors import LoaError
from broadcaster.services.audio import audio_pipeline, fpt_api_key

KEY = "fpt-" + secrets.token_urlsafe(24)


def config(tmp_path: Path, extra: str = "", environ: dict[str, str] | None = None) -> Config:
    f = tmp_path / "loa.toml"
    f.write_text(f'[general]\ndata_dir = "{tmp_path / "data"}"\n[speech]\nengine = "fpt+espeak"\n{extra}')
    return load_config(f, environ=environ or {})


def private_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "fpt.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_key_comes_from_the_environment_and_the_variable_is_no_config_key(tmp_path: Path) -> None:
    cfg = config(tmp_path, environ={"LOA_FPT_API_KEY": KEY})  # not taken for a section called "fpt"
    assert fpt_api_key(cfg.speech, {"LOA_FPT_API_KEY": KEY + "\n"}) == KEY


def test_the_key_comes_from_an_owner_only_file(tmp_path: Path) -> None:
    path = private_file(tmp_path, KEY + "\n")
    cfg = config(tmp_path, f'fpt_api_key_file = "{path}"\n')
    assert fpt_api_key(cfg.speech, {}) == KEY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_can_read_is_refused_without_showing_the_key(tmp_path: Path, mode: int) -> None:
    path = private_file(tmp_path, KEY, mode)
    cfg = config(tmp_path, f'fpt_api_key_file = "{path}"\n')
    with pytest.raises(ConfigError) as err:
        fpt_api_key(cfg.speech, {})
    assert err.value.code == "fpt_key_file_open" and "chmod 600" in err.value.message("en")
    assert KEY not in repr(err.value.params) and KEY not in err.value.message("vi")


@pytest.mark.parametrize(("extra", "code"), [
    ("", "fpt_key_missing"),
    ('fpt_api_key_file = "/nonexistent/fpt.key"\n', "fpt_key_file_unreadable"),
])
def test_no_key_stops_the_start_with_what_to_do(tmp_path: Path, extra: str, code: str) -> None:
    cfg = config(tmp_path, extra)
    with pytest.raises(ConfigError) as err:
        audio_pipeline(cfg)
    assert err.value.code == code
    assert ("LOA_FPT_API_KEY" if code == "fpt_key_missing" else "/nonexistent/fpt.key") in err.value.message("en")


def test_an_empty_key_file_is_no_key(tmp_path: Path) -> None:
    path = private_file(tmp_path, "  \n")
    cfg = config(tmp_path, f'fpt_api_key_file = "{path}"\n')
    with pytest.raises(ConfigError) as err:
        fpt_api_key(cfg.speech, {})
    assert err.value.code == "fpt_key_missing"


def test_the_key_itself_in_the_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, f'fpt_api_key = "{KEY}"\n')
    assert "speech.fpt_api_key" in str(err.value)


def test_the_config_builds_fpt_with_espeak_behind_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOA_FPT_API_KEY", KEY)
    cfg = config(tmp_path, 'fpt_voice = "myan"\nfpt_speed = -1\nfpt_deadline_s = 9.0\n')
    pipeline = audio_pipeline(cfg)
    try:
        chain = pipeline.engine
        assert isinstance(chain, FallbackEngine) and [e.name for e in chain.engines] == ["fpt", "espeak"]
        fpt = chain.engines[0]
        assert isinstance(fpt, FptEngine)
        assert (fpt.voice, fpt.speed, fpt.deadline_s) == ("myan", -1, 9.0)
        assert KEY not in repr(fpt) and KEY not in repr(cfg)
    finally:
        pipeline.store.close()


@pytest.mark.parametrize(("text", "needle"), [
    ('fpt_voice = "alloy"\n', "speech.fpt_voice"),
    ("fpt_speed = 5\n", "speech.fpt_speed"),
])
def test_bad_fpt_settings_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(LoaError) as err:
        config(tmp_path, text)
    assert needle in str(err.value)
