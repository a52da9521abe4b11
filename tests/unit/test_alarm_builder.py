"""AlarmBuilder: the snapshot comes from the best frame of the dwell window, long events get their
clip cut at `max_clip_s`, short ones after their post-roll."""

from __future__ import annotations

import io
from pathlib import Path

import av
import cv2
import numpy as np

from edge_agent.alarms.builder import MAX_CANDIDATES, AlarmBuilder
from edge_agent.alarms.delivery import Delivery
from edge_agent.alarms.event import Event
from edge_agent.clock import iso_utc
from edge_agent.config.models import Alarms, Zone
from edge_agent.frames import Detections, Frame
from edge_agent.sources.file import FileSource
from edge_agent.sources.gate import sampled_frames
from edge_agent.sources.packets import PacketRing

FOOTAGE = Path(__file__).parents[1] / "footage"
T0 = 1_780_308_000.0
# Outside the zone fill, the box and the caption bar, so the pixels there are the frame's own.
CLEAR = (slice(60, 100), slice(250, 310))
ZONE = Zone(name="quay", kind="water", polygon=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)], labels=["boat"], dwell_s=2.0)


class Memory:
    def __init__(self) -> None:
        self.media: list[tuple[Event, dict]] = []

    def emit(self, event: Event, media: dict) -> Event:
        self.media.append((event, dict(media)))
        return event

    def close(self) -> None:
        pass

    def deliver(self, items) -> list[Event]:
        """What the builder made, through the one delivery path; returns the events delivered."""
        out: list[Event] = []
        Delivery(self, threaded=False, on_delivered=out.append).submit(items)
        return out


def _tracked(score: float) -> Detections:
    return Detections(xyxy=[[10, 10, 50, 50]], confidence=[score], class_id=[8], tracker_id=[4],
                      data={"class_name": np.array(["boat"], dtype=object)})


def _start(media_time: float) -> Event:
    return Event(event_id="ev", phase="start", type="intrusion", site="s", device="d", camera="c", zone="quay",
                 zone_kind="water", label="boat", track_id=4, start=iso_utc(T0 + media_time),
                 media_time=media_time)


def test_snapshot_is_the_best_scored_frame_of_the_dwell_window() -> None:
    sink = Memory()
    builder = AlarmBuilder([ZONE], Alarms())
    # grey level = frame number; the 0.95 frame (grey 40) is older than the dwell window (3 s)
    script = [(0.0, 0.95), (1.0, 0.5), (1.5, 0.9), (2.0, 0.6), (2.5, 0.7), (3.5, 0.4)]
    for k, (t, score) in enumerate(script):
        image = np.full((240, 320, 3), 40 + 40 * k, np.uint8)
        builder.observe(Frame("c", k, t, T0 + t, image), _tracked(score))
    delivered, = sink.deliver(builder.handle([_start(3.5)], 3.5))
    (_, media), = sink.media
    jpeg = cv2.imdecode(np.frombuffer(media["snapshot"], np.uint8), cv2.IMREAD_COLOR)
    assert abs(int(jpeg[CLEAR].mean()) - (40 + 40 * 2)) <= 3  # the 0.9 frame at 1.5 s
    assert delivered.snapshot is not None and delivered.snapshot.size == len(media["snapshot"])


def test_a_fading_object_in_a_long_dwell_pins_a_bounded_number_of_frames() -> None:
    sink = Memory()
    long = Zone(**{**ZONE.model_dump(), "dwell_s": 120.0})
    builder = AlarmBuilder([long], Alarms())
    for k in range(500):  # 100 s at 5 fps, the score falling every frame
        image = np.full((240, 320, 3), 200 if k == 0 else 60, np.uint8)
        builder.observe(Frame("c", k, k * 0.2, T0 + k * 0.2, image), _tracked(0.9 - k * 0.001))
    assert len(builder._best[4]) <= MAX_CANDIDATES
    sink.deliver(builder.handle([_start(99.8)], 99.8))
    jpeg = cv2.imdecode(np.frombuffer(sink.media[0][1]["snapshot"], np.uint8), cv2.IMREAD_COLOR)
    assert abs(int(jpeg[CLEAR].mean()) - 200) <= 3  # still the best: the first frame


def test_a_long_event_gets_a_clip_of_max_clip_s_before_it_ends_and_no_second_one() -> None:
    settings = Alarms(pre_roll_s=1.0, post_roll_s=1.0, max_clip_s=4.0)
    ring = PacketRing(20.0)
    sink = Memory()
    builder = AlarmBuilder([ZONE], settings, ring)
    phases = []
    for frame in sampled_frames(FileSource("c", FOOTAGE / "vessel_moored.mp4", ring), "c", 5.0, T0):
        builder.observe(frame, _tracked(0.8))
        events = [_start(3.0)] if frame.seq == 15 else []
        if frame.seq == 80:  # 16 s: long after the clip's 4 s
            events = [_start(3.0).next_phase("end", media_time=frame.media_time, end=iso_utc(frame.wall_time))]
        phases += [(e.phase, frame.media_time, e.clip) for e in sink.deliver(builder.handle(events, frame.media_time))]
    phases += [(e.phase, None, e.clip) for e in sink.deliver(builder.flush(24.0))]
    assert [p for p, _, _ in phases] == ["start", "update", "end"]
    _, cut_at, clip = phases[1]
    assert 5.0 <= cut_at < 7.0  # as soon as the ring (packets run ahead of frames) holds 3.0 - 1.0 + 4.0 s
    assert clip is not None and clip.duration_s <= 4.0 + 0.01
    with av.open(io.BytesIO(sink.media[1][1]["clip"])) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 30  # about 4 s at 10 fps
