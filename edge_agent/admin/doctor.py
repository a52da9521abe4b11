"""`edge-agent doctor`: the first thing a technician asks the box, answered in one screen.

One line per check: `ok`, `warn` or `FAIL`, what was found, and for a problem the fix. Exit 0 when
all is well, 1 when something would stop the agent (a bad config, no model, no writable data
folder), 2 for warnings only: a camera or the broker out of reach does not stop the agent (it
raises camera_offline, and alarms wait in the outbox), but nothing reaches central until fixed.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..config.models import AgentConfig
from .probe import probe_broker, probe_camera
from ..errors import EdgeAgentError

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE_BYTES = 1 << 30


@dataclass
class Finding:
    level: str
    what: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.level:<4}  {self.what}" + (f"\n      fix: {self.fix}" if self.fix else "")


def check_config(path: str) -> tuple[Any, list[Finding]]:
    from ..config.loader import load_all  # the loader `run` uses: what passes here starts there
    from ..detect.registry import zone_labels

    try:
        cfg, zones = load_all(path, zone_labels)
    except EdgeAgentError as exc:
        return None, [Finding(FAIL, f"config {path} is not valid: {exc}", f"edit it; `edge-agent check --config {path}`")]
    cams = [c.id for c in cfg.cameras if c.enabled]
    if not cams:
        return None, [Finding(FAIL, f"config {path}: no enabled camera", "add a camera or set enabled: true")]
    return cfg, [Finding(OK, f"config {path} valid: {len(cams)} camera(s), {sum(len(z.zones) for z in zones.values())} zone(s)")]


def check_model(cfg: AgentConfig) -> list[Finding]:
    import onnxruntime as ort

    from ..detect.common import DetectorOptions
    from ..detect.registry import Registry, load_detector, sha256_file

    name, reg = cfg.detector.model, Registry()
    path = reg.path_of(name) if name in reg.names else Path(name)
    if not path.exists():
        return [Finding(FAIL, f"model {name}: {path} is missing", f"run `edge-agent models fetch {name}`"
                        if name in reg.names else "check detector.model")]
    sha = sha256_file(path)
    want = reg.entry(name).get("onnx_sha256") if name in reg.names else None
    if want and sha != want:
        return [Finding(FAIL, f"model {name}: {path} sha256 {sha[:16]} is not the manifest's {str(want)[:16]}",
                        f"run `edge-agent models fetch --force {name}`")]
    out = [Finding(OK, f"model {name}: {path} sha256 {sha[:16]}" + (" (matches the manifest)" if want else ""))]
    try:
        provider = load_detector(name, DetectorOptions.from_config(cfg.detector)).provider
    except EdgeAgentError as exc:
        return out + [Finding(FAIL, f"model {name} does not load: {exc}", "run `edge-agent models fetch --force`")]
    wanted = ", ".join(cfg.detector.providers)
    level = OK if provider.lower().startswith(cfg.detector.providers[0]) else WARN
    out.append(Finding(level, f"execution providers available: {', '.join(ort.get_available_providers())}; "
                              f"asked for {wanted}; running on {provider}",
                       "" if level == OK else "install the onnxruntime build for this hardware (README: Another model)"))
    return out


def check_cameras(cfg: AgentConfig) -> Iterator[Finding]:
    """Each enabled camera opened for real, as `check --probe` does (with its password settings)."""
    for cam in cfg.cameras:
        if cam.enabled:
            for ok, line in probe_camera(cam):
                yield Finding(OK, line) if ok else Finding(
                    WARN, line, "check the address, user and password, and that the camera is powered and on the network")


def check_broker(cfg: AgentConfig) -> list[Finding]:
    m = cfg.mqtt
    if not m.enabled:
        return [Finding(OK, f"mqtt off: alarms are stored in {cfg.alarms.store_dir}")]
    where = "mqtt" + (" over TLS" if m.tls else "") + (f" as {m.username}" if m.username else "")
    ok, line = probe_broker(m, f"edge-agent-doctor-{cfg.device.id}")
    if ok:
        return [Finding(OK, f"{where}: connected to {m.host}:{m.port}")]
    return [Finding(WARN, f"{where}: {line}; alarms wait in the outbox meanwhile",
                    "check mqtt.host, port, username, password (password_env / password_file) and tls in the config")]


def check_storage(cfg: AgentConfig) -> list[Finding]:
    places = {"media store": Path(cfg.alarms.store_dir)}
    if cfg.mqtt.enabled:
        places["outbox"] = Path(cfg.mqtt.outbox.path).parent
    out = []
    for what, folder in places.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError as exc:
            out.append(Finding(FAIL, f"{what} {folder}: not writable ({exc.strerror})",
                               "give the agent's user write access to it (systemd: /var/lib/edge-agent)"))
            continue
        free = shutil.disk_usage(folder).free
        level = OK if free >= MIN_FREE_BYTES else WARN
        out.append(Finding(level, f"{what} {folder}: writable, {free / 1e9:.1f} GB free",
                           "" if level == OK else "free some space: the outbox and clips need room during outages"))
    return out


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("pad", ctypes.c_byte * 256)]


MAX_OFFSET_S = 2.0  # alarm times further off than this confuse an operator comparing sources


def check_broker_clock(cfg: AgentConfig) -> list[Finding]:
    """The offset from the broker's clock where the broker shows it ($SYS), else why not."""
    from .brokerclock import read_broker_clock

    if not cfg.mqtt.enabled:
        return []
    bc = read_broker_clock(cfg.mqtt, f"edge-agent-doctor-{cfg.device.id}")
    if not bc.connected:
        return [Finding(WARN, f"clock: offset from the broker not measured: {bc.error}",
                        "see the mqtt line above")]
    rtt = f"round trip {bc.rtt_s * 1000:.0f} ms" if bc.rtt_s is not None else "no echo (publishing refused?)"
    offset = bc.offset_s
    if offset is None:
        return [Finding(OK, f"clock: offset from the broker cannot be seen: {bc.version or 'the broker'} publishes "
                            f"no wall-clock time in $SYS (only uptime); {rtt}")]
    where = f"{offset:+.1f} s from the broker's {bc.topic} ({rtt})"
    if abs(offset) <= MAX_OFFSET_S:
        return [Finding(OK, f"clock: {where}")]
    return [Finding(WARN, f"clock: {where}: alarm times and the broker's differ",
                    "synchronise this box and the broker to the same NTP servers")]


def check_clock() -> list[Finding]:
    """The kernel's own verdict (adjtimex: TIME_ERROR = not synchronised), which chrony, ntpd and
    systemd-timesyncd all maintain. The offset from the broker: check_broker_clock."""
    try:
        state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return [Finding(WARN, "clock: synchronisation cannot be read on this system", "check NTP by hand")]
    if state == 5:  # TIME_ERROR
        return [Finding(WARN, "clock: not synchronised (no NTP): alarm times may be off",
                        "enable time sync (systemd-timesyncd, chrony) with a reachable NTP server")]
    return [Finding(OK, "clock: synchronised (kernel NTP state)")]


def run_doctor(config_path: str) -> tuple[int, list[Finding]]:
    cfg, findings = check_config(config_path)
    if cfg is not None:
        findings += check_model(cfg)
        findings += list(check_cameras(cfg))
        findings += check_broker(cfg)
        findings += check_storage(cfg)
    findings += check_clock()
    if cfg is not None:
        findings += check_broker_clock(cfg)
    levels = {f.level for f in findings}
    return (1 if FAIL in levels else 2 if WARN in levels else 0), findings


def cli_doctor(args) -> int:
    if not args.verbose:  # the findings say it all; the modules' own logs would repeat it
        logging.getLogger().setLevel(logging.ERROR)
    code, findings = run_doctor(args.config)
    for f in findings:
        print(f.line())
    print({0: "all well", 1: "the agent would not run: fix the FAIL lines", 2: "runs, with warnings"}[code])
    return code
