"""The dispatch wing: planned broadcasts to signed commands on the wire, and device reports back into
the database. It knows the database and the protocol; what a person may do lives in `services`."""
