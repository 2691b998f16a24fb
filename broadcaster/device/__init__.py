"""Reference device agents: what a technician runs on a Raspberry Pi next to a speaker or LED board.

They are real MQTT clients of the v1 protocol (docs/protocol.md) and the simulation runs the very same
code, so what the simulated villages do is what a field device does.
"""
