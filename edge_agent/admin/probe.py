"""`edge-agent check --probe`: connect to every enabled camera and to the broker, say what was found.

A config can be valid and still not work: a camera URL where nothing listens, a wrong password,
a broker on another port or refusing the login. The probe opens each stream as the agent would
(same credentials, same transport) and reports codec, size, frame rate and keyframe interval
(GOP: a long GOP makes clips start late and reconnects slow); it logs in to the broker with the
config's credentials and TLS. Nothing is published.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterator

from ..errors import EdgeAgentError
from ..redact import redact_text, redact_url, url_secrets
from ..config.models import AgentConfig, Camera, Mqtt
from ..config.secrets import stream_urls

OPEN_TIMEOUT_S = 10.0
GOP_WAIT_S = 12.0  # read this long at most to see two keyframes


def _gop(container, stream, fps: float) -> str:
    """Frames from one keyframe to the next, read from the stream itself."""
    deadline = time.monotonic() + GOP_WAIT_S
    count, first = 0, False
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.is_keyframe:
            if first:
                return f"GOP {count} frames" + (f" ({count / fps:.1f} s)" if fps else "")
            first, count = True, 0
        count += 1 if first else 0
        if time.monotonic() > deadline:
            break
    return f"GOP over {count} frames" if first else "no keyframe seen"


def probe_stream(url: str) -> str:
    """`h264 1280x720, 25 fps, GOP 50 frames (2.0 s)`; raises EdgeAgentError saying why not."""
    import av

    from ..sources.rtsp import describe_error

    options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp://", "rtsps://")) else {}
    try:
        with av.open(url, options=options, timeout=(OPEN_TIMEOUT_S, OPEN_TIMEOUT_S)) as container:
            if not container.streams.video:
                raise EdgeAgentError("no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            return f"{ctx.name} {ctx.width}x{ctx.height}, {fps:g} fps, {_gop(container, stream, fps)}"
    except EdgeAgentError:
        raise
    except Exception as exc:  # any failure is the answer to the probe, described without the URL
        # from None on purpose: the cause's own text may carry a password; this message is redacted
        raise EdgeAgentError(redact_text(describe_error(exc), url_secrets(url))) from None


def picture_size(url: str) -> tuple[int, int]:
    """(width, height) of a stream or file's video, from its header (nothing decoded)."""
    import av

    options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp://", "rtsps://")) else {}
    try:
        with av.open(url, options=options, timeout=(OPEN_TIMEOUT_S, OPEN_TIMEOUT_S)) as container:
            if not container.streams.video:
                raise EdgeAgentError("no video stream")
            ctx = container.streams.video[0].codec_context
            return ctx.width, ctx.height
    except EdgeAgentError:
        raise
    except Exception as exc:  # described without the URL, which may hold a password
        raise EdgeAgentError(redact_text(str(exc), url_secrets(url))) from None


def probe_camera(cam: Camera) -> list[tuple[bool, str]]:
    """(ok, line) for the camera's main stream and its substream."""
    try:
        urls = stream_urls(cam)
    except EdgeAgentError as exc:
        return [(False, f"camera {cam.id}: {exc}")]
    out = []
    for which, url in zip(("url", "substream_url"), urls):
        if url is None:
            continue
        try:
            out.append((True, f"camera {cam.id} {which} {redact_url(url)}: {probe_stream(url)}"))
        except EdgeAgentError as exc:
            out.append((False, f"camera {cam.id} {which} {redact_url(url)}: cannot open: {exc}"))
    return out


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The link logs retries for a running agent; the probe reports once, itself."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def probe_broker(mqtt: Mqtt, client_id: str) -> tuple[bool, str]:
    """Log in to the broker with the config's credentials and TLS; (ok, what happened)."""
    from ..publish.mqtt import LinkOptions, MqttLink

    where = f"broker {mqtt.host}:{mqtt.port}"
    how = f"MQTT {mqtt.protocol}, {'TLS' if mqtt.tls else 'no TLS'}, " + \
        (f"user {mqtt.username}" if mqtt.username else "anonymous")
    with _quiet("edge_agent.publish.mqtt"):
        try:
            link = MqttLink(mqtt, LinkOptions(client_id=f"{client_id}-probe", session_expiry_s=0))
        except EdgeAgentError as exc:
            return False, f"{where}: {exc}"
        link.start()
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while not link.connected.is_set() and link.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ok, error = link.connected.is_set(), link.last_error
        link.stop(graceful=False)
    if ok:
        return True, f"{where}: login accepted ({how})"
    return False, f"{where}: {error or 'no answer within %.0f s' % OPEN_TIMEOUT_S} ({how})"


def probe(cfg: AgentConfig) -> list[tuple[bool, str]]:
    """Every enabled camera, then the broker when MQTT is on."""
    results = [r for cam in cfg.cameras if cam.enabled for r in probe_camera(cam)]
    if cfg.mqtt.enabled:
        results.append(probe_broker(cfg.mqtt, cfg.mqtt.client_id or f"edge-agent-{cfg.site.id}-{cfg.device.id}"))
    return results
