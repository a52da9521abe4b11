"""How much of a live stream is decoded: keyframes only while a camera is quiet, which of a
camera's streams detection decodes, and the optional hardware decoder.

Keyframe-only decode (FFmpeg's `skip_frame`): a quiet camera is analysed once per idle interval
and its motion check needs a picture every second or two, not 25 of them; a keyframe costs about
what a few predicted frames do, so a camera with a 1 s GOP decodes a few times less. It is used
only where the camera's GOP, measured from its keyframes, is at most the configured bound
(`keyframe_decode_max_gop_s`): with a 4 s GOP the motion check would see a person 4 s late.
When the motion check fires on a keyframe, full decode resumes with the very next packet (the
decoder holds that keyframe, so the predicted frames after it decode cleanly); the alarm is late
by at most one GOP. Packets still all go to the clip ring: clips are never keyframe-only.

Under overload (the policy's `decode` step, detect/overload.py) a quiet camera decodes keyframes
only whatever its GOP, up to `overload_max_gop_s` (`keyframe_decode_overload_max_gop_s`, 5 s by
default: field cameras use 2-4 s GOPs): a starved box analyses nothing on time, so a
camera that starts moving being seen one GOP late is the lesser cost. Past that bound (smart
codecs stretch a still scene's GOP to 10 s and more) a person could cross the picture between two
keyframes unseen, so such a camera keeps full decode. Health says why a camera is on keyframes
(`decode_reason`: `gop` or `overload`).
"""

from __future__ import annotations

import logging
from typing import Any

import av

from ..health import Health
from .gate import FrameGate

log = logging.getLogger(__name__)

# Quiet this long (no motion, no track) before a camera drops to keyframes: a person standing
# still between two motion checks keeps full decode through the pause.
QUIET_AFTER_S = 3.0


class KeyframeDecode:
    """One camera's decode mode; its decode thread calls `attach` per connection and `before` per
    packet, before decoding it."""

    def __init__(self, camera: str, gate: FrameGate, health: Health, max_gop_s: float,
                 quiet_after_s: float = QUIET_AFTER_S, overload_max_gop_s: float = 0.0) -> None:
        self.camera, self.gate, self.health = camera, gate, health
        self.max_gop_s = float(max_gop_s)
        self.overload_max_gop_s = float(overload_max_gop_s)
        self.quiet_after_s = quiet_after_s
        self.gop_s: float | None = None
        self.keyframes_only = False
        self._ctx: Any = None
        self._last_key: float | None = None
        self._after_key = False  # the previous packet was a keyframe: full decode may resume here

    def attach(self, stream: Any) -> None:
        """A new connection decodes everything until its GOP is measured again."""
        self._ctx = stream.codec_context
        self._last_key, self._after_key, self.gop_s = None, False, None
        self._ctx.skip_frame = "DEFAULT"
        self._set(None)

    def before(self, packet: av.Packet, t: float) -> None:
        """Choose the mode for `packet` (media time `t`)."""
        if packet.is_keyframe:
            if self._last_key is not None and t > self._last_key:
                self._measured(t - self._last_key)
            self._last_key = t
            self._set(self._reason() if t - self.gate.last_urgent >= self.quiet_after_s else None)
        elif self.keyframes_only and self._after_key and self.gate.last_urgent >= (self._last_key or 0.0):
            self._set(None)  # the keyframe just decoded showed motion
        self._after_key = bool(packet.is_keyframe)

    def _reason(self) -> str | None:
        """Why a quiet camera may decode keyframes only now (`gop`, `overload`), or None."""
        if self.gop_s is None:
            return None
        if self.max_gop_s > 0 and self.gop_s <= self.max_gop_s:
            return "gop"
        policy = self.gate.policy
        if policy is not None and policy.shedding("decode") and self.gop_s <= self.overload_max_gop_s:
            return "overload"
        return None

    def _measured(self, gop: float) -> None:
        rounded = round(gop, 2)
        if rounded != self.gop_s:
            self.gop_s = rounded
            self.health.set_info(self.camera, gop_s=rounded)
            if self.max_gop_s > 0 and rounded > self.max_gop_s:
                log.info("camera %s: GOP %.1f s is longer than keyframe_decode_max_gop_s %.1f s: every frame "
                         "is decoded unless the box is overloaded", self.camera, rounded, self.max_gop_s)

    def _set(self, reason: str | None) -> None:
        """Keyframes only for `reason`, or full decode (None)."""
        keyframes_only = reason is not None
        if keyframes_only != self.keyframes_only:
            self._ctx.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"
            self.health.count(self.camera, "decode_switches")
            self.keyframes_only = keyframes_only
        self.health.set_info(self.camera, decode="keyframes" if keyframes_only else "full", decode_reason=reason)


def detects_on_substream(detect_stream: str, tiles_on: bool) -> bool:
    """Whether the motion gate and detector of a camera with a substream decode it (`detect_stream`
    of the camera config). `auto` keeps a camera with tiles on its main stream: tiles exist because
    far objects are small, and scaled to a substream's 640x360 they are smaller still (measured:
    scripts/bench_substream.py)."""
    return detect_stream == "substream" or (detect_stream == "auto" and not tiles_on)


def open_options(hwaccel: str) -> dict[str, Any]:
    """The `av.open` keyword for a hardware decoder (`off`: none). FFmpeg's own silent fallback is
    off: a device that cannot be opened, or cannot decode the stream, makes `av.open` fail, which
    the source answers with `software_fallback`, so health says which decoder really runs."""
    if hwaccel == "off":
        return {}
    from av.codec.hwaccel import HWAccel

    return {"hwaccel": HWAccel(device_type=hwaccel, allow_software_fallback=False)}


def software_fallback(camera: str, hwaccel: str, health: Health, error: str) -> None:
    """The hardware decoder could not be used: say so once, and decode in software from now on."""
    log.warning("camera %s: hardware decoder %s unavailable (%s); decoding in software", camera, hwaccel, error)
    health.set_info(camera, hw_decode=f"fallback: {error}")
