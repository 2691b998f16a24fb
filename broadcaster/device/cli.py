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

from broadcaster.device.agent import AgentConfig
from broadcaster.device.led import LedAgent
from broadcaster.device.speaker import SpeakerAgent


def cmd_agent(args: argparse.Namespace) -> int:

    if args.config_file:
        cfg = AgentConfig.load(args.config_file)
    else:
        if not (args.id and args.broker and args.key):
            print("Cần --config FILE, hoặc đủ --id, --broker và --key (agent_config_missing)", file=sys.stderr)
            return 2
        keys = dict(k.split(":", 1) for k in args.key)
        cfg = AgentConfig(
            device_id=args.id,
            kind=args.kind,
            broker_url=args.broker,
            public_keys=keys,
            state_dir=args.state_dir or f"agent-state/{args.id}",
            sink=args.sink,
        )
    if args.sink_override:
        cfg.sink = args.sink_override
    agent = SpeakerAgent(cfg) if args.kind == "speaker" else LedAgent(cfg)
    if args.exit_with_parent:
        agent.exit_with_parent(os.getppid())

    signal.signal(signal.SIGTERM, lambda *_: agent._stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        agent.run_forever()
    return 0


