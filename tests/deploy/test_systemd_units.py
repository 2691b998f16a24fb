"""The systemd units in deploy/systemd/: valid for systemd itself, hardened, and pointing at what exists.

`systemd-analyze verify` checks every key and the commands' paths (the units name /opt/loa, so the test
verifies a copy that names this checkout); where it is missing, the keys are read with configparser and the
same rules checked. `systemd-analyze security --offline` scores each unit's exposure (0 safe, 10 exposed).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
# What docs/operations.md and docs/security.md promise of both units
HARDENED = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "Restart": "on-failure",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}
EXPOSURE_GOAL = 3.0  # systemd-analyze security: below 3 is its "OK"


def _service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNITS / name, encoding="utf-8")
    return parser["Service"]


def _here(tmp_path: Path, name: str, instance: str = "") -> Path:
    """A copy of the unit that names this checkout instead of /opt/loa, as `instance` if a template."""
    text = (UNITS / name).read_text(encoding="utf-8").replace("/opt/loa", str(ROOT))
    out = tmp_path / (name.replace("@.", f"@{instance}.") if instance else name)
    (tmp_path / name).write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize("name", ["loa.service", "loa-device@.service"])
def test_each_unit_is_hardened_with_its_own_user_and_a_restart_policy(name: str) -> None:
    service = _service(name)
    for key, value in HARDENED.items():
        assert service.get(key) == value, (name, key)
    assert service["User"] not in ("", "root") and service["User"] == service["Group"]
    assert int(service["RestartSec"]) > 0
    state = service["StateDirectory"]  # the one place it writes, made by systemd with the unit's owner
    assert service["ReadWritePaths"] == "/var/lib/" + state and service["StateDirectoryMode"] == "0700"
    users = (UNITS / "loa.sysusers.conf").read_text(encoding="utf-8")
    assert re.search(rf"^u {re.escape(service['User'])} ", users, re.M), "the unit's user is declared"


def test_the_daemon_unit_runs_daemon_py_and_the_agent_unit_runs_loa_agent() -> None:
    daemon = _service("loa.service")
    assert daemon["ExecStart"].split()[1:] == ["/opt/loa/daemon.py", "--config", "/etc/loa/config.toml"]
    assert daemon["KillMode"] == "control-group"  # its managed Mosquitto goes with it
    agent = _service("loa-device@.service")
    assert agent["ExecStart"] == "/opt/loa/.venv/bin/loa agent ${LOA_KIND} --config /etc/loa-agent/%i.json"
    assert agent["StateDirectory"] == "loa-agent/%i"  # `loa device add`'s default state_dir
    assert "PrivateDevices" not in agent  # the speaker plays through /dev/snd


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize(("name", "instance"), [("loa.service", ""), ("loa-device@.service", "thon-1-loa")])
def test_systemd_itself_accepts_the_unit_and_scores_it_ok(tmp_path: Path, name: str, instance: str) -> None:
    unit = _here(tmp_path, name, instance)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (verify.stdout + verify.stderr).splitlines() if str(tmp_path) in line]
    assert verify.returncode == 0 and not complaints, verify.stdout + verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout + security.stderr)
    if score is None:
        pytest.skip(f"this systemd-analyze cannot score a unit offline: {security.stderr.strip()[:200]}")
    assert float(score.group(1)) < EXPOSURE_GOAL, security.stdout
