"""Which of several daemons on one PostgreSQL database leads: a session-level advisory lock.

The leader plans, fires and runs the chores (the timer, the dispatcher's reconcile loop, slogans, the
alert and feed pollers); every daemon serves the API and records what devices report. The lock lives on
a connection of its own, held open for as long as this daemon leads, so it is freed the moment that
connection ends:

- the leader's process dies (kill -9, out of memory): the kernel closes its socket, PostgreSQL ends the
  session at once, and a follower takes the lock at its next poll (`poll_s`);
- the leader's machine or cable dies: nothing closes the socket, so the session is given TCP keepalives
  (`tcp_keepalives_*`, both ends) and ended when they go unanswered;
- the leader's process is paused (a frozen VM, SIGSTOP, a long swap storm): its kernel still answers
  keepalives, so PostgreSQL ends a session that has sent nothing for `lock_timeout_s`
  (`idle_session_timeout`, PostgreSQL 14 and later); the leader polls every `poll_s`, far more often.

A leader that wakes after a follower took over finds its connection gone at its next poll and steps
down; until then, what it might still do is fenced: a dispatch claims its placement only in a
transaction that sees this daemon's lock session holding the lock (`fence`), and the claim itself is a
conditional UPDATE, so an airing is dispatched once whoever races (broadcaster.dispatch.claim).

Two daemons given the same `[cluster] instance` would share one MQTT client id and throw each other off
the broker; a second advisory lock, on the instance's name, refuses the second one at start.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from broadcaster.errors import LoaError

log = logging.getLogger(__name__)

LEADER_CLASS = 0x6C6F61  # "loa": the advisory lock's first key; the second names the schema
INSTANCE_CLASS = 0x6C6F69  # "loi": one lock per instance name
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}

_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = :c AND objid = :k "
    "AND objsubid = 2 AND pid = :pid AND granted)"
)


def lock_key(*parts: str) -> int:
    """A lock's second key from names: non-negative, so pg_locks (oid columns) shows it as given."""
    return zlib.crc32("\x00".join(parts).encode("utf-8")) & 0x7FFFFFFF


class Leadership:
    """Polls for the lead on its own connection; calls `on_gain` when it gets it and `on_loss` when it
    loses it (the connection failed) or gives it up (`stop`). Both run on the polling thread, one at a
    time; `on_gain` should start threads rather than do long work, since the lock session must not fall
    silent for `lock_timeout_s`."""

    def __init__(
        self,
        url: str,
        *,
        instance: str,
        on_gain: Callable[[], None],
        on_loss: Callable[[], None],
        poll_s: float = 2.0,
        lock_timeout_s: int = 15,
    ) -> None:
        self.instance = instance
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.poll_s = poll_s
        self.lock_timeout_s = lock_timeout_s
        # Its own engine, no pool: the lock is the connection's, and a pool would hand it to someone else.
        self.engine: Engine = create_engine(url, poolclass=NullPool, connect_args={**KEEPALIVE, "connect_timeout": 5})
        self._conn: Connection | None = None
        self._pid: int | None = None
        self._key: int | None = None
        self._leading = False
        self._lock = threading.Lock()  # one poll at a time (the thread, a test, stop)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect, refuse a second daemon of the same instance name, try for the lead once (the first
        daemon of a cluster leads from its start), then poll."""
        with self._lock:
            self._connect()
        self.check()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Give up the lead (the leader's parts stop first) and close the lock session, which frees the
        lock at once for a follower."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            if self._leading:
                self._step_down("stopping")
            self._close(release=True)
        self.engine.dispose()

    @property
    def leading(self) -> bool:
        return self._leading

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    # ------------------------------------------------------------ one poll

    def check(self) -> None:
        """One poll: a follower tries for the lock; the leader makes sure its lock session is still there
        (and, by speaking, keeps it from being ended as silent)."""
        with self._lock:
            if self._stop.is_set() and self._thread is not None:
                return
            try:
                if self._conn is None:
                    self._connect()
                assert self._conn is not None
                if self._leading:
                    self._conn.execute(text("SELECT 1"))
                    return
                got = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": LEADER_CLASS, "k": self._key}
                ).scalar()
            except Exception as exc:  # instance_taken too: someone took our name while we were away
                log.warning("lost the leader-lock connection (%s); %s", type(exc).__name__, exc)
                self._close()
                if self._leading:
                    self._step_down("its lock session ended")
                return
            if got:
                self._leading = True
                log.info("instance %s leads (pid %s of PostgreSQL)", self.instance, self._pid)
                # Catching up (re-sending what is unacknowledged, dispatching what fell due while nobody
                # led) may outlast `lock_timeout_s` on a large fleet: the session must not fall silent.
                beating = threading.Event()
                beat = threading.Thread(target=self._beat, args=(self._conn, beating), name="leader-beat")
                beat.start()
                failed = False
                try:
                    self.on_gain()
                except Exception:
                    log.exception("could not start the leader's parts; giving the lead up")
                    failed = True
                finally:
                    beating.set()
                    beat.join()
                if failed:
                    self._step_down("its parts failed to start")
                    self._close(release=True)  # frees the lock for another daemon

    def _beat(self, conn: Connection, done: threading.Event) -> None:
        """Speak on the lock session while the leader's parts start (the poll is waiting for them)."""
        while not done.wait(self.poll_s):
            try:
                conn.execute(text("SELECT 1"))
            except Exception:
                return  # the next poll finds the session gone and steps down

    def _step_down(self, why: str) -> None:
        self._leading = False
        log.warning("instance %s no longer leads: %s", self.instance, why)
        try:
            self.on_loss()
        except Exception:
            log.exception("while stopping the leader's parts")

    # ------------------------------------------------------------ the lock session

    def _connect(self) -> None:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            schema = conn.execute(text("SELECT current_schema()")).scalar() or "public"
            self._key = lock_key("leader", str(schema))
            for setting, value in (
                ("tcp_keepalives_idle", KEEPALIVE["keepalives_idle"]),
                ("tcp_keepalives_interval", KEEPALIVE["keepalives_interval"]),
                ("tcp_keepalives_count", KEEPALIVE["keepalives_count"]),
                ("idle_session_timeout", f"{self.lock_timeout_s}s"),
            ):
                try:
                    conn.execute(text(f"SET {setting} = '{value}'"))
                except Exception:  # idle_session_timeout is PostgreSQL 14+: then only keepalives guard it
                    log.warning("PostgreSQL does not take %s: a paused leader keeps the lead", setting)
            self._pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            mine = conn.execute(
                text("SELECT pg_try_advisory_lock(:c, :k)"),
                {"c": INSTANCE_CLASS, "k": lock_key("instance", str(schema), self.instance)},
            ).scalar()
        except Exception:
            conn.close()
            raise
        if not mine:
            conn.close()
            raise LoaError("instance_taken", {"instance": self.instance})
        self._conn = conn

    def _close(self, *, release: bool = False) -> None:
        """`release`: give the locks back first. Closing alone frees them too, but only once the server has
        ended the session, a moment later: a follower polling then would miss them."""
        if self._conn is not None:
            try:
                if release:
                    self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
                self._conn.close()
            except Exception:
                log.debug("closing the lock session failed", exc_info=True)
            self._conn = None
            self._pid = None

    # ------------------------------------------------------------ fencing

    def fence(self, session: Session) -> bool:
        """True if, in `session`'s transaction, this daemon's lock session still holds the lead: what a
        dispatch asks before it claims, so a leader paused past its lock's end does not act on it."""
        pid, key = self._pid, self._key
        if not self._leading or pid is None or key is None:
            return False
        return bool(session.execute(_HELD, {"c": LEADER_CLASS, "k": key, "pid": pid}).scalar())
