"""Going live: the officer speaks into the browser and the chosen villages hear it within seconds.

A live session is an airing like any other, stored in the tables every airing uses: an announcement
(whose audio, once the session ends, is the recording of what was said) and one broadcast of kind
`live` per village, which the dispatcher claims and turns into signed `play` commands the way it does
for everything else. Their body is a relay's (`stream`, docs/protocol.md), naming this session's
stream on the audio listener: `/live/<128 random bits>.mp3`, a path nobody can guess, so only a device
that was sent the signed command can open it. The stream is never stored in the database, only in
this process and in the commands.

The browser sends what its MediaRecorder makes, a slice every quarter second, each numbered; one
ffmpeg per session turns them into the MP3 stream (audio/live.py), which every speaker reads from
the live edge and which is recorded as it goes. The session ends when the officer ends it, when the
browser has sent nothing for `[live] idle_s` (a closed tab, a lost network), after `[live] max_s`,
when the announcement is recalled (`DELETE /api/v1/announcements/{id}`, `loa cancel`: the dispatcher
stops the speakers, and this desk notices within half a second and ends the stream), or when the
daemon stops. Then the stream ends (speakers reach its end and ack `done`), the broadcasts get their
real length, and the recording is levelled and stored content-addressed like an uploaded recording,
as the announcement's audio.

Who may go live is who may send the same announcement: an officer or an admin at normal or priority,
the `[security] emergency_roles` for an emergency, which needs the same second look as any emergency
(a 409 with the villages and a code, then the same request with the code and a reason). A live
broadcast is not planned by the planner, whose timeline needs lengths known in advance: outside an
emergency it is refused in quiet hours, and two sessions never talk over each other in a village
unless the second one ranks higher (it then cuts in, as an emergency does).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from audio import AudioError
from audio.live import LiveStream, LiveStreamError, input_format
from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Command,
    Delivery,
    Zone,
    audit,
    villages_of,
)
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE, coded_reason, render
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.announcements import speakers_summary
from broadcaster.services.emergencies import Confirmations, check_reason, check_sender, fingerprint
from broadcaster.services.inputs import MAX_TITLE_CHARS, check_text, fits_sql_int
from broadcaster.services.planning import PRIORITY_OF, default_quiet_hours, quiet_hours
from broadcaster.services.zones import resolve_zones, zone_names
from schedules import QuietHours
from schedules.clock import to_local

log = logging.getLogger(__name__)

KIND = "live"  # Broadcast.kind of a live airing
PRIORITIES = ("normal", "priority", "emergency")
WATCH_S = 0.5  # how often the desk looks for sessions gone quiet, too long, or recalled
CLOSE_GRACE_S = 15.0  # after the end, how long a speaker has to report that it finished
LATE_MARGIN_S = 60.0  # how late a live broadcast may still be dispatched
KEEP_ENDED = 50  # ended sessions kept in memory for the page that ran them to read the outcome
MAX_SEQ = 10**9
END_REASONS = ("ended", "idle", "max_length", "recalled", "shutdown", "encoder_failed")


@dataclass
class LiveSession:
    id: int  # the announcement's id: the session is that announcement on air
    token: str
    user_id: int
    username: str
    title: str
    priority: str
    zones: list[str]
    villages: list[str]
    village_names: list[str]
    started_at: datetime
    start_at: datetime  # the instant speakers are told to open the stream
    stream: LiveStream
    recording: Path
    opened: float = field(default_factory=time.monotonic)
    last_chunk: float = field(default_factory=time.monotonic)
    next_seq: int = 0
    state: str = "live"  # live -> ending -> ended
    end_reason: str = ""
    ended_at: datetime | None = None
    ended_by: str = ""
    audio: dict[str, Any] | None = None
    audio_problem: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class LiveDesk:
    """The live sessions of this daemon, their streams, and the watch that ends them."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.settings = svc.config.live
        self._base_url = ""
        self._sessions: dict[int, LiveSession] = {}
        self._by_token: dict[str, LiveSession] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    # ------------------------------------------------------------ wiring

    def publish_at(self, base_url: str) -> None:
        """The audio listener's address as devices reach it (`[http] audio_url`)."""
        self._base_url = base_url.rstrip("/")

    def start(self, *, close_leftovers: bool = True) -> None:
        """Close what a previous run left on air (its streams died with it), then watch the sessions.
        `close_leftovers=False` in a cluster: a live airing in the database may be another daemon's."""
        with self.svc.db.session() as session:
            leftover = set(
                session.scalars(
                    select(Broadcast.announcement_id).where(
                        Broadcast.kind == KIND,
                        Broadcast.status.in_([BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED]),
                    )
                )
            )
        for announcement_id in leftover - {None} if close_leftovers else ():
            assert announcement_id is not None
            self._close_airing(announcement_id)
        self._watch = threading.Thread(target=self._watch_loop, name="live-watch", daemon=True)
        self._watch.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=5)
        for s in self._live():
            self.end(s.id, reason="shutdown")

    # ------------------------------------------------------------ what the dispatcher and the audio listener ask

    def stream_url(self, announcement_id: int) -> str | None:
        """Where a speaker opens this announcement's live stream; None when it is not on air here."""
        with self._lock:
            s = self._sessions.get(announcement_id)
        if s is None or s.state != "live" or not self._base_url:
            return None
        return f"{self._base_url}/live/{s.token}.mp3"

    def stream(self, token: str) -> LiveStream | None:
        """The stream behind an unguessable path, while its session is on air."""
        with self._lock:
            s = self._by_token.get(token)
        return s.stream if s is not None and s.state == "live" else None

    # ------------------------------------------------------------ a person's actions

    def open(
        self,
        who: Principal,
        zones: list[str],
        priority: str,
        mime: str,
        title: str | None = None,
        *,
        reason: str = "",
        lang: str = DEFAULT_LANGUAGE,
    ) -> dict[str, Any]:
        """Put the person on air in these zones; the caller has checked they may (`check_live`). Nothing
        is stored when it is refused."""
        if priority not in PRIORITIES:
            raise LoaError("bad_priority", {})
        fmt = input_format(mime or "")
        if fmt is None:
            raise LoaError("live_format", {"format": (mime or "")[:80]})
        now = self.svc.clock.now()
        title = (title or "").strip() or f"Phát trực tiếp {to_local(now):%H:%M %d/%m}"
        check_text(title, "title", MAX_TITLE_CHARS)
        with self.svc.db.session() as session:
            targets = resolve_zones(session, zones)
            villages = list(dict.fromkeys(v for z in targets for v in villages_of(session, z)))
            if not villages:
                raise LoaError("no_zone", {})
            names = zone_names(session)
            if priority != "emergency":
                self._refuse_in_quiet_hours(session, villages, names, now)
        if not self._base_url:
            raise LoaError("live_unavailable", {"detail": "audio listener"}, status=409)
        recording = self.svc.audio.store.new_tmp(".mp3")
        with self._lock:
            self._refuse_if_busy(villages, priority, names)
            try:
                stream = LiveStream(recording, fmt, bitrate=self.settings.bitrate)
            except LiveStreamError as exc:
                recording.unlink(missing_ok=True)
                raise LoaError("live_unavailable", {"detail": str(exc)[:200]}, status=409) from exc
            zone_ids = [z.id for z in targets]
            try:
                item_id, start = self._store_session(who, zone_ids, villages, priority, title, now, reason)
            except BaseException:
                stream.abort()
                recording.unlink(missing_ok=True)
                raise
            s = LiveSession(
                id=item_id,
                token=secrets.token_hex(16),  # 128 bits
                user_id=who.user_id,
                username=who.username,
                title=title,
                priority=priority,
                zones=zone_ids,
                villages=villages,
                village_names=[names.get(v, v) for v in villages],
                started_at=now,
                start_at=start,
                stream=stream,
                recording=recording,
            )
            self._sessions[s.id] = s
            self._by_token[s.token] = s
        log.info("live %s on air in %s (%s, by %s)", s.id, ", ".join(villages), priority, who.username)
        return self._view(s, lang)

    def feed(
        self, who: Principal, session_id: int, seq: int, data: bytes, lang: str = DEFAULT_LANGUAGE
    ) -> dict[str, Any]:
        """One slice of the officer's voice, numbered from 0. A slice sent again (a retry after a lost
        answer) is taken once; a gap is refused with the number expected, so the page resends it."""
        s = self._find(session_id)
        if s.user_id != who.user_id:
            raise LoaError("forbidden.live", {"by": s.username}, status=403)
        if not 0 <= seq <= MAX_SEQ:
            raise LoaError("live_gap", {"seq": seq, "expected": s.next_seq}, status=409)
        failed = False
        with s.lock:
            if s.state != "live":
                raise LoaError("live_ended", {"id": s.id, "why": self._why(s, lang)}, status=409)
            if seq > s.next_seq:
                raise LoaError("live_gap", {"seq": seq, "expected": s.next_seq}, status=409)
            if seq == s.next_seq:
                try:
                    s.stream.feed(data)
                except LiveStreamError as exc:
                    log.error("live %s: the encoder failed: %s", s.id, exc)
                    failed = True
                else:
                    s.next_seq += 1
                    s.last_chunk = time.monotonic()
        if failed:
            self.end(s.id, reason="encoder_failed")
            raise LoaError("live_ended", {"id": s.id, "why": self._why(s, lang)}, status=409)
        return {
            "next_seq": s.next_seq,
            "listeners": s.stream.listeners,
            "seconds": round((self.svc.clock.now() - s.started_at).total_seconds(), 1),
            "state": s.state,
        }

    def end(
        self, session_id: int, *, reason: str = "ended", who: Principal | None = None, lang: str = DEFAULT_LANGUAGE
    ) -> dict[str, Any]:
        """End it: the stream ends on every speaker, the broadcasts get their real length, the recording
        becomes the announcement's audio. Ending an ended session changes nothing."""
        s = self._find(session_id)
        if who is not None and who.user_id != s.user_id and not who.may("admin"):
            raise LoaError("forbidden.live", {"by": s.username}, status=403)
        with s.lock:
            if s.state != "live":
                return self._view(s, lang)
            s.state, s.end_reason = "ending", reason
            s.ended_by = who.username if who is not None else "loa"
        with self._lock:
            self._by_token.pop(s.token, None)  # from now on the path answers 404
        s.stream.close()
        s.ended_at = self.svc.clock.now()
        self._close_airing(s.id)
        with self.svc.db.session() as session:
            audit(session, s.ended_at, s.ended_by, "live.end", announcement=s.id, reason=reason, owner=s.username,
                  seconds=round((s.ended_at - s.started_at).total_seconds(), 1), bytes=s.stream.bytes_in)  # fmt: skip
        self._keep_recording(s)
        with s.lock:
            s.state = "ended"
        self._forget_old()
        log.info("live %s ended (%s)", s.id, reason)
        return self._view(s, lang)

    def view(self, session_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        return self._view(self._find(session_id), lang)

    def sessions(self, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
        """Sessions on air now, then those that ended lately, newest first."""
        with self._lock:
            found = sorted(self._sessions.values(), key=lambda s: (s.state == "live", s.id), reverse=True)
        return [self._view(s, lang) for s in found]

    # ------------------------------------------------------------ checks

    def confirm_emergency(
        self, confirmations: Confirmations, who: Principal, zones: list[str], title: str | None,
        confirmation: str | None, reason: str | None,
    ) -> str:  # fmt: skip
        """An emergency live's second look, as for any emergency (services/emergencies.py), said for a
        live voice: it sounds at once, in quiet hours too, for as long as the officer speaks."""
        check_sender(self.svc, who, zones, title=title or "")
        print_ = fingerprint(live=True, zones=zones, title=title or "")
        now = self.svc.clock.now()
        with self.svc.db.session() as session:
            targets = resolve_zones(session, zones)
            names = zone_names(session)
            villages = ", ".join(names.get(v, v) for v in dict.fromkeys(
                v for z in targets for v in villages_of(session, z)))  # fmt: skip
        expires_s = int(confirmations.ttl.total_seconds())
        if not confirmation:
            with self.svc.db.session() as session:
                audit(session, now, who.username, "emergency.asked", zones=zones, title=title or "", live=True)
            code = confirmations.issue(who.user_id, print_)
            raise LoaError(
                "confirm_emergency.live",
                {"villages": villages, "confirmation": code, "expires_s": expires_s},
                status=409,
            )
        text = check_reason(reason)
        if not confirmations.accept(confirmation, who.user_id, print_):
            with self.svc.db.session() as session:
                audit(session, now, who.username, "emergency.refused", why="confirmation", zones=zones,
                      title=title or "", reason=text, live=True)  # fmt: skip
            code = confirmations.issue(who.user_id, print_)
            raise LoaError(
                "confirm_emergency.live_again",
                {"villages": villages, "confirmation": code, "expires_s": expires_s},
                status=409,
            )
        return text

    def _refuse_in_quiet_hours(self, session: Any, villages: list[str], names: dict[str, str], now: datetime) -> None:
        default = default_quiet_hours(self.svc)
        hours = quiet_hours(session, default)
        parents = dict(session.execute(select(Zone.id, Zone.parent_id).where(Zone.id.in_(villages))).all())
        local = to_local(now).time()
        quiet: list[tuple[str, QuietHours]] = []
        for v in villages:
            qh = hours.get(v) or hours.get(parents.get(v) or "") or default
            if qh.contains(local):
                quiet.append((v, qh))
        if quiet:
            raise LoaError(
                "live_quiet_hours",
                {"villages": ", ".join(names.get(v, v) for v, _ in quiet), "hours": quiet[0][1].label()},
                status=409,
            )

    def _refuse_if_busy(self, villages: list[str], priority: str, names: dict[str, str]) -> None:
        """Two voices at once in a village: only a higher priority cuts in. Called under the desk's lock."""
        rank = PRIORITY_OF[priority]
        for s in self._sessions.values():
            shared = [v for v in s.villages if v in villages]
            if s.state == "live" and shared and PRIORITY_OF[s.priority] >= rank:
                raise LoaError(
                    "live_busy",
                    {"villages": ", ".join(names.get(v, v) for v in shared), "by": s.username, "id": s.id},
                    status=409,
                )

    # ------------------------------------------------------------ storage

    def _store_session(
        self,
        who: Principal,
        zone_ids: list[str],
        villages: list[str],
        priority: str,
        title: str,
        now: datetime,
        reason: str,
    ) -> tuple[int, datetime]:
        """The announcement and one broadcast per village, PLANNED to start `lead_s` from now: the
        dispatcher (poked by the API) claims them at once and signs the plays."""
        start = now + timedelta(seconds=self.settings.lead_s)
        with self.svc.db.session() as session:
            item = Announcement(title=title, text=title, priority=priority, created_at=now,
                                created_by=who.username, engine=KIND)  # fmt: skip
            session.add(item)
            session.flush()
            for village in villages:
                session.add(
                    Broadcast(
                        announcement_id=item.id,
                        title=title,
                        zone_id=village,
                        start_at=start,
                        # On air for at most max_s (so the timelines show it on air until it ends, when
                        # the real length is written); valid a minute longer, so a dispatch held up for a
                        # moment still sends it (moved to start a little later) rather than missing it.
                        expires_at=start + timedelta(seconds=self.settings.max_s + LATE_MARGIN_S),
                        kind=KIND,
                        priority=priority,
                        duration_ms=int(self.settings.max_s * 1000),
                        code=KIND,
                        explanation=f"Phát trực tiếp do {who.username} nói, ngay lúc này.",
                    )
                )
            audit(session, now, who.username, "live.start", announcement=item.id, zones=zone_ids,
                  villages=villages, priority=priority, title=title)  # fmt: skip
            if reason:
                audit(session, now, who.username, "emergency.confirmed", announcement=item.id, zones=zone_ids,
                      reason=reason, live=True)  # fmt: skip
            item_id = item.id
        return item_id, start

    def _close_airing(self, announcement_id: int) -> None:
        """The broadcasts of an ended session: the real length; one never sent is missed; the plays'
        outbox rows expire shortly, so the outbox stops re-sending them and a speaker that never said
        it finished is closed as such."""
        now = self.svc.clock.now()
        with self.svc.db.session() as session:
            rows = list(
                session.scalars(
                    select(Broadcast).where(Broadcast.announcement_id == announcement_id, Broadcast.kind == KIND)
                )
            )
            for b in rows:
                if b.status is BroadcastStatus.PLANNED:
                    b.status, b.reason = BroadcastStatus.MISSED, coded_reason("live_ended")
                b.duration_ms = max(0, int((now - b.start_at).total_seconds() * 1000))
                b.expires_at = max(b.start_at + timedelta(milliseconds=1), min(b.expires_at, now))
            ids = [b.id for b in rows]
            if ids:
                deliveries = select(Delivery.id).where(Delivery.broadcast_id.in_(ids))
                closing = now + timedelta(seconds=CLOSE_GRACE_S)
                session.execute(
                    update(Command)
                    .where(Command.delivery_id.in_(deliveries), Command.expires_at > closing)
                    .values(expires_at=closing)
                    .execution_options(synchronize_session=False)
                )

    def _keep_recording(self, s: LiveSession) -> None:
        """The recording, levelled and stored content-addressed, as the announcement's audio."""
        try:
            if s.stream.bytes_out == 0:
                s.audio_problem = "empty"
                return
            try:
                stored = self.svc.audio.import_recording(s.recording)
            except AudioError as exc:
                s.audio_problem = exc.code
                log.warning("live %s: the recording was not kept: %s", s.id, exc)
                return
            with self.svc.db.session() as session:
                item = session.get(Announcement, s.id)
                if item is not None:
                    item.audio_sha256, item.audio_size = stored.sha256, stored.size
                    item.audio_duration_ms, item.audio_ext = stored.duration_ms, stored.path.suffix.lstrip(".")
            s.audio = {
                "sha256": stored.sha256,
                "size": stored.size,
                "duration_ms": stored.duration_ms,
                "url": f"/audio/{stored.sha256}{stored.path.suffix}",
            }
        finally:
            s.recording.unlink(missing_ok=True)

    # ------------------------------------------------------------ the watch

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCH_S):
            try:
                self._watch_once()
            except Exception:
                log.exception("live: the watch failed; it tries again")

    def _watch_once(self) -> None:
        live = self._live()
        if not live:
            return
        now = time.monotonic()
        with self.svc.db.session() as session:
            recalled = set(
                session.scalars(
                    select(Broadcast.announcement_id)
                    .where(
                        Broadcast.announcement_id.in_([s.id for s in live]),
                        Broadcast.status == BroadcastStatus.CANCELLED,
                    )
                    .distinct()
                )
            )
        for s in live:
            if s.id in recalled:
                self.end(s.id, reason="recalled")
            elif not s.stream.running:
                self.end(s.id, reason="encoder_failed")
            elif now - s.last_chunk > self.settings.idle_s:
                self.end(s.id, reason="idle")
            elif now - s.opened > self.settings.max_s:
                self.end(s.id, reason="max_length")

    # ------------------------------------------------------------ helpers

    def _live(self) -> list[LiveSession]:
        with self._lock:
            return [s for s in self._sessions.values() if s.state == "live"]

    def _find(self, session_id: int) -> LiveSession:
        with self._lock:
            s = self._sessions.get(session_id) if fits_sql_int(session_id) else None
        if s is None:
            raise LoaError("not_found.live", {"id": session_id}, status=404)
        return s

    def _forget_old(self) -> None:
        with self._lock:
            ended = sorted(s.id for s in self._sessions.values() if s.state == "ended")
            for sid in ended[: max(0, len(ended) - KEEP_ENDED)]:
                del self._sessions[sid]

    @staticmethod
    def _why(s: LiveSession, lang: str) -> str:
        return render(f"live_end.{s.end_reason or 'ended'}", {}, lang) or s.end_reason

    def _view(self, s: LiveSession, lang: str) -> dict[str, Any]:
        now = self.svc.clock.now()
        until = s.ended_at or now
        with self.svc.db.session() as session:
            summary = speakers_summary(session, s.id)
        return {
            "id": s.id,
            "title": s.title,
            "priority": s.priority,
            "zones": s.zones,
            "villages": s.villages,
            "village_names": s.village_names,
            "state": s.state,
            "started_by": s.username,
            "started_at": s.started_at.isoformat(),
            "started_at_local": to_local(s.started_at).strftime("%H:%M:%S %d/%m/%Y"),
            "start_at": s.start_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "end_reason": s.end_reason or None,
            "end_text": self._why(s, lang) if s.end_reason else None,
            "ended_by": s.ended_by or None,
            "seconds": round(max(0.0, (until - s.started_at).total_seconds()), 1),
            "next_seq": s.next_seq,
            "bytes_in": s.stream.bytes_in,
            "listeners": s.stream.listeners if s.state == "live" else 0,
            "summary": summary,
            "chunk_url": f"/api/v1/live/{s.id}/chunks",
            "idle_s": self.settings.idle_s,
            "max_s": self.settings.max_s,
            "recording": s.audio,
            "recording_problem": s.audio_problem or None,
        }
