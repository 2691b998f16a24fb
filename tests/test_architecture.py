"""The house's rules, read from the imports themselves (ast), so a newcomer's shortcut fails here.

Imports point inward: `audio/` and `schedules/` know nothing of `broadcaster/`; the device side stands on
the wire format alone; storage does not reach for use cases; dispatch does not reach for what a person
does; `daemon.py` only wires.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = sys.stdlib_module_names


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    module: str  # absolute, dotted
    names: tuple[str, ...] = ()  # for `from module import a, b`
    lazy: bool = False  # inside a function: runs only when called

    def __str__(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line} imports {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(Import(path, child.lineno, a.name, (), lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join([*base, module] if module else base)
                found.append(Import(path, child.lineno, module, tuple(a.name for a in child.names), lazy))
            visit(child, inner)

    visit(tree, False)
    return found


def files(*where: str) -> list[Path]:
    out: list[Path] = []
    for w in where:
        p = ROOT / w
        out += [p] if p.is_file() else sorted(p.rglob("*.py"))
    return [p for p in out if "migrations/versions" not in p.as_posix()]


def top(module: str) -> str:
    return module.split(".", 1)[0]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def project_imports(*where: str) -> list[Import]:
    """Imports of the project's own packages (the `from broadcaster import protocol` form named by what it
    brings, so `broadcaster.protocol`)."""
    out = []
    for path in files(*where):
        for imp in imports_of(path):
            if top(imp.module) not in ("broadcaster", "schedules", "audio", "daemon"):
                continue
            if imp.module == "broadcaster" and imp.names:
                out += [Import(imp.source, imp.line, f"broadcaster.{n}", (), imp.lazy) for n in imp.names]
            else:
                out.append(imp)
    return out


def reaching(where: str, wings: tuple[str, ...]) -> list[str]:
    """The imports under `where` of any of these broadcaster wings."""
    return [str(i) for i in project_imports(where) if any(within(i.module, f"broadcaster.{w}") for w in wings)]


def test_the_reader_finds_every_kind_of_import() -> None:
    """The rules below are only as good as this reader: top-level, lazy, relative and `from pkg import mod`."""
    sample = ROOT / "broadcaster" / "cli" / "main.py"
    found = imports_of(sample)
    assert any(i.module == "argparse" and not i.lazy for i in found)
    assert any(i.module == "broadcaster.errors" and i.lazy for i in found)
    mine = project_imports("broadcaster/runtime/path.py")
    assert any(i.module == "broadcaster.protocol" for i in mine)  # `from broadcaster import protocol`


def test_audio_and_schedules_import_nothing_of_broadcaster() -> None:
    bad = [str(i) for i in project_imports("audio", "schedules") if top(i.module) in ("broadcaster", "daemon")]
    assert not bad, bad


def test_schedules_does_no_io() -> None:
    """Time and priority only: threads, files, sockets, processes and the APScheduler timer live in
    broadcaster/runtime/."""
    io_modules = {
        "apscheduler", "asyncio", "http", "io", "os", "pathlib", "requests", "selectors", "shutil", "socket",
        "sqlalchemy", "sqlite3", "subprocess", "tempfile", "paho",
    }  # fmt: skip
    bad = [str(i) for p in files("schedules") for i in imports_of(p) if top(i.module) in io_modules]
    bad += [
        f"{p.relative_to(ROOT)}:{n.lineno} calls {n.func.id}()"
        for p in files("schedules")
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("open", "input", "print")
    ]
    bad += [
        str(i) for p in files("schedules") for i in imports_of(p) if i.module == "threading" and "Thread" in i.names
    ]
    assert not bad, bad


def test_the_device_side_stands_on_the_wire_format_alone() -> None:
    """What a speaker's Raspberry Pi installs: the standard library, paho-mqtt, cryptography, rfc8785, and of the
    project only broadcaster/protocol/ (and itself)."""
    allowed_third_party = {"paho", "cryptography", "rfc8785"}
    bad = []
    for path in files("broadcaster/device", "broadcaster/protocol"):
        for imp in imports_of(path):
            t = top(imp.module)
            if t in STDLIB or t == "__future__":
                continue
            if t == "broadcaster":
                mine = project_imports(str(path.relative_to(ROOT)))
                if any(
                    not (within(m.module, "broadcaster.protocol") or within(m.module, "broadcaster.device"))
                    for m in mine
                    if m.line == imp.line
                ):
                    bad.append(str(imp))
                if path.is_relative_to(ROOT / "broadcaster" / "protocol") and within(imp.module, "broadcaster.device"):
                    bad.append(str(imp))  # the wire format knows nothing of any device
                continue
            if t not in allowed_third_party:
                bad.append(f"{imp} (not on a device)")
    assert not bad, bad


def test_storage_imports_no_use_case_code() -> None:
    outer = ("services", "dispatch", "api", "cli", "runtime", "simulation", "device", "broker", "web", "ingest")
    bad = reaching("broadcaster/db", outer)
    assert not bad, bad


def test_dispatch_does_not_reach_for_what_a_person_does() -> None:
    bad = reaching("broadcaster/dispatch", ("services", "api", "cli", "runtime", "simulation", "web", "ingest"))
    assert not bad, bad


def test_services_stand_below_the_faces() -> None:
    """CLI, API, web, simulation and the running daemon stand on the services, never the other way."""
    bad = reaching("broadcaster/services", ("api", "cli", "runtime", "simulation", "web", "ingest"))
    assert not bad, bad


def test_daemon_py_only_wires() -> None:
    """No files, locks, sockets or collector tricks in daemon.py: those belong to broadcaster/runtime."""
    tree = ast.parse((ROOT / "daemon.py").read_text(encoding="utf-8"))
    stdlib = {top(i.module) for i in imports_of(ROOT / "daemon.py") if top(i.module) in STDLIB}
    wiring = {"__future__", "argparse", "dataclasses", "logging", "pathlib", "signal", "sys", "threading", "typing"}
    assert stdlib <= wiring, stdlib - wiring
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["main"]
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert [c.name for c in classes] == ["Daemon"]
    methods = {n.name for n in classes[0].body if isinstance(n, ast.FunctionDef)}
    assert methods <= {"start", "stop", "banner", "_poke"}, methods


@pytest.mark.parametrize(
    "module",
    ["broadcaster.device.speaker", "broadcaster.device.led", "broadcaster.device.cli", "broadcaster.cli.main"],
)
def test_importing_the_device_side_loads_none_of_the_servers_libraries(module: str) -> None:
    server = ["numpy", "scipy", "pydub", "gtts", "sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn",
              "pydantic", "apscheduler", "psycopg", "qrcode", "requests", "audio", "schedules"]  # fmt: skip
    code = f"import sys, {module}; print(' '.join(m for m in {server!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"importing {module} loads {out.stdout.strip()}"


def test_one_device_core_two_drivers() -> None:
    """The agent and the fleet simulator take no protocol decision themselves: the checks, the acks and
    the priorities are the core's (broadcaster/device/core.py), so the simulation is what a device does."""
    decisions = {"check_command", "make_ack", "verify", "strip_diacritics", "Refusal", "PRIORITIES"}
    drivers = files("broadcaster/device/agent.py", "broadcaster/device/speaker.py", "broadcaster/device/led.py",
                    "broadcaster/simulation/fleet.py")  # fmt: skip
    bad = []
    for path in drivers:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in decisions:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {name}")  # type: ignore[attr-defined]
    assert not bad, bad
    for path in drivers:
        if path.name in ("agent.py", "fleet.py"):
            assert any(i.module == "broadcaster.device.core" and "DeviceCore" in i.names for i in imports_of(path))
