"""The podcast feeds: RSS 2.0 with enclosures and Apple's iTunes tags, which every podcast app on a
villager's phone reads, so the commune's bulletins can be subscribed to like any programme.

Each episode is an item that actually aired (services/listen.py) and whose audio is still served;
its enclosure's length and type are the served file's (its size on disk, the audio route's type),
because podcast apps check them. Written with ElementTree, so every text is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from email.utils import format_datetime

from broadcaster.services import Services
from broadcaster.services.listen import AiredItem
from schedules.clock import to_local

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM = "http://www.w3.org/2005/Atom"
MAX_TEXT = 4000  # an episode's notes; the whole text is on its page (a feed of 30 long texts stays small)
ET.register_namespace("itunes", ITUNES)
ET.register_namespace("atom", ATOM)


def _duration(ms: int | None) -> str:
    seconds = round((ms or 0) / 1000)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _sub(parent: ET.Element, tag: str, body: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if body is not None:
        el.text = body
    return el


def episode_title(item: AiredItem) -> str:
    if not item.emergency:
        return item.title
    return f"KHẨN CẤP (đã thu hồi): {item.title}" if item.recall else f"KHẨN CẤP: {item.title}"


def podcast(
    svc: Services, base: str, village: dict[str, str] | None, items: list[AiredItem], self_path: str, link_path: str
) -> str:
    commune = svc.config.general.commune
    where = f"{commune} — {village['name']}" if village else commune
    rss = ET.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", f"Loa truyền thanh {where}")
    _sub(channel, "link", base + link_path)
    _sub(channel, f"{{{ATOM}}}link", href=base + self_path, rel="self", type="application/rss+xml")
    description = f"Các thông báo đã phát trên loa truyền thanh {where}, để nghe lại."
    _sub(channel, "description", description)
    _sub(channel, "language", "vi")
    newest = max((i.last_aired for i in items), default=None)
    if newest is not None:
        _sub(channel, "lastBuildDate", format_datetime(newest.replace(microsecond=0), usegmt=True))
    _sub(channel, "generator", "loa")
    _sub(channel, f"{{{ITUNES}}}author", f"UBND {commune}")
    _sub(channel, f"{{{ITUNES}}}summary", description)
    _sub(channel, f"{{{ITUNES}}}explicit", "false")
    _sub(channel, f"{{{ITUNES}}}type", "episodic")
    _sub(channel, f"{{{ITUNES}}}category", text="Government")
    for item in items:
        if item.audio_path is None:
            continue  # a podcast episode is its audio
        entry = _sub(channel, "item")
        _sub(entry, "title", episode_title(item))
        text = item.text if len(item.text) <= MAX_TEXT else item.text[:MAX_TEXT].rsplit(" ", 1)[0] + "…"
        if item.recall:
            text = f"Đã thu hồi lúc {item.recall['at_local']}: {item.recall['reason'] or 'báo nhầm'}.\n\n{text}"
        aired = ", ".join(item.village_names)
        _sub(entry, "description", f"{text}\n\nĐã phát: {to_local(item.last_aired):%H:%M %d/%m/%Y} ({aired}).")
        _sub(entry, "link", f"{base}/tin/{item.id}")
        _sub(entry, "guid", f"{base}/tin/{item.id}", isPermaLink="true")
        _sub(entry, "pubDate", format_datetime(item.first_aired.replace(microsecond=0), usegmt=True))
        _sub(entry, "enclosure", url=base + item.audio_path, length=str(item.audio_bytes), type=item.audio_type)
        _sub(entry, f"{{{ITUNES}}}duration", _duration(item.duration_ms))
        _sub(entry, f"{{{ITUNES}}}explicit", "false")
        _sub(entry, f"{{{ITUNES}}}episodeType", "full")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="unicode")
