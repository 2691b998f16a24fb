"""The command-line faces of loa: the officer's and technician's `loa` commands."""

import getpass


def os_account() -> str:
    """Who the audit log names for a `loa` command: the operating-system account running it. `loa`
    works on the database directly, so whoever runs it has already been authenticated, by the server's
    own login, and could write any row anyway; a name they typed would prove nothing."""
    try:
        return getpass.getuser()
    except Exception:
        return "cli"
