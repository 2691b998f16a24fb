"""`loa agent speaker|led`: the device agent's own entry, importing only the device side.

`broadcaster.cli.main` hands the `agent` command here without importing anything of the server, so a
speaker's Raspberry Pi installs only the device side (paho-mqtt, cryptography) and runs the same `loa`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from broadcaster.device.config import AgentConfig, AgentConfigError
from broadcaster.device.led import LedAgent
from broadcaster.device.speaker import SpeakerAgent


def _config(args: argparse.Namespace) -> AgentConfig:
    if args.config_file:
        cfg = AgentConfig.load(args.config_file)
    else:
        if not (args.id and args.broker and args.key):
            raise AgentConfigError(
                "Cần --config FILE, hoặc đủ --id, --broker và --key / need --config FILE, or --id, --broker and --key"
            )
        if not all(":" in k for k in args.key):
            raise AgentConfigError("--key: viết KID:BASE64 / write KID:BASE64")
        cfg = AgentConfig(
            device_id=args.id,
            kind=args.kind,
            broker_url=args.broker,
            public_keys=dict(k.split(":", 1) for k in args.key),
            state_dir=str(Path(args.state_dir or f"agent-state/{args.id}").resolve()),  # not where it is started next
            sink=args.sink,
        )
    if cfg.kind != args.kind:
        raise AgentConfigError(f"tệp cấu hình là của thiết bị {cfg.kind} / the config file is for a {cfg.kind}")
    if args.sink_override:
        cfg.sink = args.sink_override
    return cfg


def cmd_agent(args: argparse.Namespace) -> int:
    try:
        cfg = _config(args)
    except AgentConfigError as exc:
        print(f"Lỗi: {exc} (agent_config)", file=sys.stderr)
        return 2
    agent = SpeakerAgent(cfg) if cfg.kind == "speaker" else LedAgent(cfg)
    if args.exit_with_parent:
        agent.exit_with_parent(os.getppid())
    signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
    with contextlib.suppress(KeyboardInterrupt):
        agent.run_forever()
    return 0
