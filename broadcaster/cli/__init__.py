"""The command-line faces of loa: the officer's and technician's `loa` commands."""
