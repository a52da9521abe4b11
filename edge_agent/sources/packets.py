"""A ring of encoded packets per camera, and clips remuxed from it without re-encoding.

Clips are cut from what the camera sent (as Frigate does with `-c copy`): no encoder on the edge
box, the picture central command sees is the camera's own, and a 15 s clip costs milliseconds.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av


@dataclass(frozen=True)
class StoredPacket:
    data: bytes
    pts: int
    dts: int
    keyframe: bool
    time: float  # media seconds, continuous across reconnects
    generation: int  # which stream template these bytes belong to


class PacketRing:
    """The last `seconds` of one camera's encoded video, safe to fill from its decode thread.

    `set_template` is called with each newly opened stream: packets are muxed with the codec
    parameters of the stream they came from. PyAV crashes when a template's container has been
    closed, and a live source closes its container on every reconnect, so at the first keyframe
    of each stream the ring copies the codec parameters into a tiny in-memory container it owns.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self._packets: deque[StoredPacket] = deque()
        self._templates: dict[int, tuple[Any, Any, Fraction]] = {}
        self._live_stream: Any = None
        self._generation = -1
        self._lock = threading.Lock()

    def set_template(self, stream: Any) -> None:
        """Announce a newly opened stream; call before pushing its packets."""
        with self._lock:
            self._generation += 1
            self._live_stream = stream

    def _own_template(self, packet: av.Packet) -> None:
        stream = self._live_stream
        buf = io.BytesIO()
        with av.open(buf, "w", format="matroska") as out:
            copy = out.add_stream_from_template(stream)
            pkt = av.Packet(bytes(packet))
            pkt.pts = pkt.dts = 0
            pkt.time_base = stream.time_base
            pkt.is_keyframe = True
            pkt.stream = copy
            out.mux(pkt)
        holder = av.open(io.BytesIO(buf.getvalue()))
        self._templates[self._generation] = (holder.streams.video[0], holder, stream.time_base)
        self._live_stream = None

    def push(self, packet: av.Packet, media_time: float) -> None:
        """Copy one demuxed packet in; packets without pts (the first RTSP one) are dropped."""
        if packet.pts is None or packet.size == 0:
            return
        stored = StoredPacket(
            bytes(packet),
            int(packet.pts),
            int(packet.dts if packet.dts is not None else packet.pts),
            bool(packet.is_keyframe),
            float(media_time),
            self._generation,
        )
        with self._lock:
            if self._generation not in self._templates:
                if not stored.keyframe or self._live_stream is None:
                    return  # a clip can only start at a keyframe of a known stream
                self._own_template(packet)
            self._packets.append(stored)
            horizon = stored.time - self.seconds
            while self._packets and self._packets[0].time < horizon:
                self._packets.popleft()
            live = {p.generation for p in self._packets}
            for gen in [g for g in self._templates if g not in live and g != self._generation]:
                del self._templates[gen]

    @property
    def latest_time(self) -> float | None:
        with self._lock:
            return self._packets[-1].time if self._packets else None

    @property
    def earliest_time(self) -> float | None:
        with self._lock:
            return self._packets[0].time if self._packets else None

    def window(self, t0: float, t1: float) -> tuple[list[StoredPacket], Any, Fraction] | None:
        """Packets covering [t0, t1] from the last keyframe at or before t0, of one stream generation."""
        with self._lock:
            packets = list(self._packets)
            templates = dict(self._templates)
        start = None
        for i, p in enumerate(packets):
            if p.keyframe and p.time <= t0:
                start = i
            elif p.time > t0:
                break
        if start is None:  # the ring begins after t0: start at its first keyframe
            start = next((i for i, p in enumerate(packets) if p.keyframe), None)
        if start is None:
            return None
        gen = packets[start].generation
        chosen = [p for p in packets[start:] if p.time <= t1 and p.generation == gen]
        if gen not in templates or not chosen:
            return None
        stream, _container, time_base = templates[gen]
        return chosen, stream, time_base


def remux_clip(packets: list[StoredPacket], template: Any, time_base: Fraction) -> bytes:
    """An MP4 of the packets, timestamps rebased to zero.

    Codecs MP4 cannot carry (old MPEG-4 variants from recorded files) are re-encoded to H.264;
    cameras send H.264 or H.265, which are copied.
    """
    try:
        return _remux(packets, template, time_base)
    except ValueError:  # "'mp4' format does not support '<codec>' codec"
        return _transcode(packets, template, time_base)


def _remux(packets: list[StoredPacket], template: Any, time_base: Fraction) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream_from_template(template)
        base = packets[0].dts
        last_dts, step = None, max(1, round(1 / (100 * time_base)))  # 10 ms until a step is seen
        for p in packets:
            dts = p.dts - base
            if last_dts is not None and dts <= last_dts:
                # loops and reconnects repeat timestamps: one frame interval on, not one tick (the
                # MP4 track's coarser timescale rounded a tick to the same dts, EINVAL, and every
                # such clip was re-encoded: at 48 cameras alarms waited 13 s behind those encodes)
                dts = last_dts + step
            elif last_dts is not None:
                step = dts - last_dts
            pkt = av.Packet(p.data)
            pkt.dts = dts
            pkt.pts = max(p.pts - base, dts)
            pkt.time_base = time_base
            pkt.is_keyframe = p.keyframe
            pkt.stream = stream
            out.mux(pkt)
            last_dts = dts
    return buf.getvalue()


def _transcode(packets: list[StoredPacket], template: Any, time_base: Fraction) -> bytes:
    src = template.codec_context
    decoder = av.CodecContext.create(src.name, "r")
    decoder.width, decoder.height = src.width, src.height
    if src.extradata:
        decoder.extradata = src.extradata
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        fps = template.average_rate or 10
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = src.width, src.height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "26", "bf": "0"}
        n = 0
        for p in packets:
            pkt = av.Packet(p.data)
            pkt.pts, pkt.dts, pkt.time_base = p.pts, p.dts, time_base
            for frame in decoder.decode(pkt):
                frame = frame.reformat(format="yuv420p")
                frame.pts, frame.time_base = n, Fraction(1, 1) / Fraction(fps)
                n += 1
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def cut_clip(ring: PacketRing, t0: float, t1: float) -> tuple[bytes, float, float] | None:
    """Remux [t0, t1] media seconds from the ring: (mp4 bytes, first time, last time), or None."""
    found = ring.window(t0, t1)
    if found is None:
        return None
    packets, template, time_base = found
    return remux_clip(packets, template, time_base), packets[0].time, packets[-1].time
