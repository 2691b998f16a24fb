"""A speaker's relay, against a real HTTP station (tests/broadcaster/streams.py) and a real ffmpeg.

A relay is heard only while its stream comes through: one that cannot be opened is failed with the
reason, never `done`; one that drops is opened again, backing off, until its window ends; and it says
how many seconds it really relayed (docs/protocol.md, *play*). The end-to-end story, through the daemon
and into the report, is tests/broadcaster/test_records_end_to_end.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broadcaster.device.sinks import CommandSink, FileSink, PlaybackError
from tests.broadcaster.streams import Station, closed_port


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    """One station for the module (its tone is made once); each test streams on a channel of its own."""
    s = Station(tmp_path_factory.mktemp("station"))
    yield s
    s.close()


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://.../vov1", "resolve"),  # the README's own placeholder: the name does not resolve
        (f"http://127.0.0.1:{closed_port()}/vov1", "refused"),
        ("STATION/missing.mp3", "404"),  # the server answers, but has no such stream
    ],
    ids=["dns", "refused", "http-404"],
)
def test_a_stream_that_cannot_be_opened_is_unreachable_not_done(
    tmp_path: Path, station: Station, url: str, why: str
) -> None:
    url = url.replace("STATION", station.base)
    sink = FileSink(tmp_path / "played")
    began = time.time()
    with pytest.raises(PlaybackError) as failure:
        sink.play_stream(url, 2.0, began)
    assert str(failure.value).startswith("stream_unreachable: ")
    assert why in str(failure.value)
    assert failure.value.played_s == 0.0
    assert time.time() - began < 3.5  # tried again within the window, then given up
    assert not list((tmp_path / "played").glob("*relay*"))  # nothing kept: nothing was relayed


def test_the_sound_card_player_does_not_call_an_unopened_stream_played(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffplay exits 0 when it cannot open its input: that is how the README's placeholder relay was once
    acked `done`. The player now only plays what ffmpeg could open."""
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    with pytest.raises(PlaybackError, match=r"^stream_unreachable: .*404"):
        CommandSink("ffplay").play_stream(f"{station.base}/missing.mp3", 2.0, time.time())


def test_a_dropped_stream_is_opened_again_and_only_what_came_through_is_counted(
    tmp_path: Path, station: Station
) -> None:
    url = station.channel("vov1", drop_after_s=1.5, outage_s=1.5)  # drops after 1.5 s, away for 1.5 s
    sink = FileSink(tmp_path / "played")
    began = time.time()
    relayed = sink.play_stream(url, 6.0, began)
    took = time.time() - began
    ch = station.channels["vov1"]
    assert ch.connections >= 2 and ch.refused >= 1  # it came back, after knocking while the station was away
    assert relayed is not None and 2.0 < relayed < 5.0  # not the 6 s window: the outage was not heard
    assert abs(relayed - ch.sent_s) < 0.6, (relayed, ch.sent_s)
    assert 5.5 < took < 7.0  # to the end of its window, not beyond
    copy = next((tmp_path / "played").glob("*-relay.mp3"))
    assert copy.stat().st_size > 2.0 * 8000  # every connection's audio, in one file


def test_a_stop_ends_a_relay_at_once_with_what_it_relayed(tmp_path: Path, station: Station) -> None:
    import threading

    url = station.channel("vov1-stopped")
    sink = FileSink(tmp_path / "played")
    threading.Timer(1.5, sink.stop).start()
    began = time.time()
    relayed = sink.play_stream(url, 10.0, began)
    assert time.time() - began < 3.0
    assert relayed is not None and 0.8 < relayed < 2.0
