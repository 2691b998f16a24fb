"""Device bench: what one speaker agent costs a Raspberry Pi, against the least a signed-MQTT device needs.

    .venv/bin/python bench/device.py

The agent runs as a technician installs it: `python -S` with only the base install on its path (the
distributions `pip install loa` brings, copied from this environment by bench/common.device_site) and
the project's source, so nothing of the server can be imported, then `loa agent speaker` connected to a
real Mosquitto (ManagedBroker, free port) until its retained status says online.

import_s: importing broadcaster.device.{speaker,led,cli} in a fresh interpreter (median of the runs).
baseline_import_s: importing what any such device needs (paho-mqtt's client, cryptography's Ed25519).
rss_mb: resident memory (VmRSS) of the running, connected `loa agent speaker` process.
baseline_rss_mb: a bare paho client with an Ed25519 public key loaded, connected to the same broker.
Goals (issue #10): import under 0.3 s, resident memory under 40 MB.

The LAST stdout line is one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, device_site

sys.path.insert(0, str(ROOT))

from broadcaster import protocol
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.device.config import AgentConfig

IMPORT_AGENT = "import broadcaster.device.speaker, broadcaster.device.led, broadcaster.device.cli"
IMPORT_BASELINE = "import paho.mqtt.client, cryptography.hazmat.primitives.asymmetric.ed25519"
BARE_CLIENT = """
import sys, time, base64, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[2]))
c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bare", protocol=mqtt.MQTTv5)
up = threading.Event()
c.on_connect = lambda *a: (c.subscribe("pa/bare/cmd", qos=1), up.set())
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
up.wait(10)
print("online", flush=True)
time.sleep(3600)
"""


def say(text: str) -> None:
    print(f"[device {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def timed_import(python: list[str], env: dict[str, str], statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([*python, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settled_rss(proc: subprocess.Popen[bytes], seconds: float = 1.0) -> float:
    """Resident memory once the process has been idle a moment (connected, subscribed)."""
    time.sleep(seconds)
    if proc.poll() is not None:
        raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
    return rss_mb(proc.pid)




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        site = device_site(tmp / "site")
        env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
        python = [sys.executable, "-S"]
        say(f"device install: {sum(f.stat().st_size for f in site.rglob('*') if f.is_file()) / 1e6:.1f} MB in {site}")
        agent_imports = [timed_import(python, env, IMPORT_AGENT) for _ in range(args.runs)]
        base_imports = [timed_import(python, env, IMPORT_BASELINE) for _ in range(args.runs)]
        full_env = [timed_import([sys.executable], dict(os.environ), IMPORT_AGENT) for _ in range(args.runs)]
        say(f"import: agent {statistics.median(agent_imports):.3f} s, baseline {statistics.median(base_imports):.3f} s")

        broker = ManagedBroker(tmp / "broker", BrokerSettings(port=0))
        broker.start()
        signer = protocol.load_or_create_signer(tmp / "k.pem")
        agent_rss: list[float] = []
        bare_rss: list[float] = []
        try:
            for run in range(args.runs):
                cfg = AgentConfig(
                    device_id=f"thon-1-loa-{run}", kind="speaker", broker_url=broker.url,
                    public_keys={signer.kid: signer.public_b64}, state_dir=str(tmp / f"agent-{run}"), sink="null",
                    tele_s=0,
                )  # fmt: skip
                cfg.save(tmp / f"agent-{run}.json")
                agent = subprocess.Popen(
                    [*python, "-m", "broadcaster.cli", "agent", "speaker", "--config", str(tmp / f"agent-{run}.json")],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                bare = subprocess.Popen(
                    [*python, "-c", BARE_CLIENT, str(broker.port), signer.public_b64],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    assert bare.stdout is not None
                    bare.stdout.readline()  # "online"
                    _wait_for_status(broker, cfg.device_id)
                    agent_rss.append(settled_rss(agent))
                    bare_rss.append(settled_rss(bare))
                finally:
                    for p in (agent, bare):
                        p.terminate()
                        p.wait(10)
        finally:
            broker.stop()
    result = {
        "import_s": round(statistics.median(agent_imports), 4),
        "baseline_import_s": round(statistics.median(base_imports), 4),
        "import_in_server_env_s": round(statistics.median(full_env), 4),
        "rss_mb": round(statistics.median(agent_rss), 1),
        "baseline_rss_mb": round(statistics.median(bare_rss), 1),
        "goal_import_s": 0.3,
        "goal_rss_mb": 40,
        "runs": args.runs,
    }
    say(f"resident memory: agent {result['rss_mb']} MB, bare paho client {result['baseline_rss_mb']} MB")
    print(json.dumps(result))


def _wait_for_status(broker: ManagedBroker, device_id: str, timeout: float = 20.0) -> None:
    """Until the agent's retained `online` status is at the broker: it is connected and subscribed."""
    from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client

    topic = protocol.Topics().status(device_id)
    seen: list[bool] = []
    client = new_client(f"probe-{device_id}", persistent=False)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, m: seen.append(bool(m.payload) and json.loads(m.payload).get("online"))
    connect(client, BrokerAddress.parse(broker.url), persistent=False)
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while not any(seen):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{device_id} did not come online")
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    main()
