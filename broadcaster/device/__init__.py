"""The device side: what runs next to a speaker or an LED board, and nothing of the server.

- `core`: the sans-IO device core (verify, remember ids, fetch, wait for start_at, play, report);
- `agent`, `speaker`, `led`, `sinks`, `fetch`: the reference agent that drives the core with threads
  and a real MQTT session (`loa agent speaker|led`);
- `config`: the device configuration file `loa device add` writes.

It imports only the standard library, paho-mqtt, cryptography and `broadcaster.protocol`, so a
Raspberry Pi installs it without the server's dependencies (README, "A device install").
The fleet simulator (`broadcaster.simulation.fleet`) drives the same core for thousands of devices.
"""
