"""The x86 container image, built with podman (scripts/build_image.sh) and run against a real
mosquitto and a real RTSP camera on the host's loopback (--network=host).

One build per session (layer-cached: a rebuild after a code change reinstalls nothing). The config
is deploy/cameras.yaml, the layout every installed box uses, pointed at the test's broker and
cameras; one of the two cameras is dead on purpose: it must not make the container unhealthy.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from edge_agent.publish.topics import Topics
from tests.fixtures.mosquitto import free_port
from tests.fixtures.waiting import wait_for
from tests.integration.test_live_mqtt import Listener

pytestmark = [pytest.mark.integration, pytest.mark.image]
ROOT = Path(__file__).resolve().parents[2]
PODMAN = ROOT / "scripts" / "podman.sh"
IMAGE = "localhost/edge-agent:x86-test"
FOOTAGE = ROOT / "tests" / "footage"
EXPECTED = yaml.safe_load((FOOTAGE / "rail_intrusion.expected.yaml").read_text())["expect"][0]
CONTAINER_UID = 10001  # the image's `edge` user


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    res = subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


@pytest.fixture(scope="session")
def image() -> str:
    if not shutil.which("podman"):
        pytest.fail("podman is not installed: scripts/setup.sh installs it (podman runc debootstrap)")
    began = time.monotonic()
    res = subprocess.run([str(ROOT / "scripts" / "build_image.sh"), "--tag", IMAGE], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"image build failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    size = int(podman("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout)
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB, build step {time.monotonic() - began:.0f} s")
    return IMAGE


class Box:
    """A config folder and a data folder as an installed box has them, and containers run on them."""

    def __init__(self, tmp: Path, image: str) -> None:
        self.image = image
        self.config, self.data = tmp / "etc-edge-agent", tmp / "var-lib-edge-agent"
        (self.config / "zones").mkdir(parents=True)
        self.data.mkdir()
        for folder in (self.config, self.config / "zones"):
            folder.chmod(0o755)
        if os.geteuid() == 0:
            os.chown(self.data, CONTAINER_UID, CONTAINER_UID)
        else:
            self.data.chmod(0o777)
        self.names: list[str] = []

    def configure(self, broker_port: int, cameras: dict[str, str]) -> None:
        cfg = yaml.safe_load((ROOT / "deploy" / "cameras.yaml").read_text())
        cfg["site"]["id"], cfg["device"]["id"] = "s1", "d1"
        cfg["mqtt"] = {**cfg["mqtt"], "host": "127.0.0.1", "port": broker_port, "health_interval_s": 1,
                       "reconnect_min_s": 1, "reconnect_max_s": 2}
        for key in ("username", "password_file"):
            cfg["mqtt"].pop(key)
        cfg["cameras"] = [{"id": cid, "url": url, "detect_fps": 5, "offline_alarm_s": 5} for cid, url in cameras.items()]
        (self.config / "cameras.yaml").write_text(yaml.safe_dump(cfg))
        zones = yaml.safe_load((FOOTAGE / "zones" / "rail_intrusion.yaml").read_text())
        for cid in cameras:
            (self.config / "zones" / f"{cid}.yaml").write_text(yaml.safe_dump(zones if cid == "rail" else {"zones": []}))

    def start(self) -> str:
        name = f"edge-agent-test-{uuid.uuid4().hex[:8]}"
        podman("run", "-d", "--name", name, "--network=host",
               "-v", f"{self.config}:/etc/edge-agent:ro", "-v", f"{self.data}:/var/lib/edge-agent", self.image)
        self.names.append(name)
        return name

    def state(self, name: str, field: str) -> str:
        return podman("inspect", name, "--format", "{{" + field + "}}").stdout.strip()

    def logs(self, name: str) -> str:
        res = podman("logs", name, check=False)
        return (res.stdout + res.stderr)[-6000:]

    def outbox_alarms(self) -> list[dict]:
        """Alarm events waiting in the outbox on the data volume (read-only, beside the running agent)."""
        db = self.data / "outbox.sqlite"
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT payload FROM messages WHERE kind='event'").fetchall()
        except sqlite3.OperationalError:  # the agent has not created its tables yet
            return []
        finally:
            con.close()
        return [json.loads(p) for (p,) in rows]

    def remove_all(self) -> None:
        for name in self.names:
            podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def box(tmp_path: Path, image: str) -> Iterator[Box]:
    b = Box(tmp_path, image)
    yield b
    b.remove_all()


def intrusion_starts(listener: Listener) -> list[dict]:
    return [e for e in listener.on(listener.topics.alarms)
            if e["type"] == EXPECTED["type"] and e.get("zone") == EXPECTED["zone"] and e["phase"] == "start"]


def test_image_raises_the_alarm_turns_healthy_and_stops_cleanly_on_sigterm(box, mosquitto, rtsp_server):
    srv = rtsp_server({"rail": FOOTAGE / "rail_intrusion.mp4"}, loop=True)
    dead = f"rtsp://127.0.0.1:{free_port()}/nothing-here"  # one dead camera must not make it unhealthy
    box.configure(mosquitto.port, {"rail": srv.url("rail"), "dead": dead})
    central = Listener(mosquitto.port, Topics("edge", "s1", "d1"))
    try:
        name = box.start()
        assert wait_for(lambda: intrusion_starts(central), 120, step=0.5), box.logs(name)
        alarm = intrusion_starts(central)[0]
        assert alarm["camera"] == "rail" and alarm["label"] == EXPECTED["label"]

        assert wait_for(lambda: podman("healthcheck", "run", name, check=False).returncode == 0, 60, step=2), \
            podman("healthcheck", "run", name, check=False).stdout + box.logs(name)
        status = box.state(name, ".State.Healthcheck.Status")
        assert status == "healthy", status
        health = [h for h in central.on(central.topics.health) if "dead" in h["cameras"]][-1]
        assert health["cameras"]["dead"]["state"] != "online" and health["progress"]["ok"]

        podman("stop", "-t", "60", name, timeout=90)  # SIGTERM (the image's STOPSIGNAL), SIGKILL only after 60 s
        assert box.state(name, ".State.ExitCode") == "0", box.logs(name)
        started = {e["event_id"] for e in intrusion_starts(central)}
        # a clean stop ends the alarms in progress and flushes them to the broker before exiting
        assert wait_for(lambda: started <= {e["event_id"] for e in central.on(central.topics.alarms)
                                            if e["phase"] == "end"}, 10), box.logs(name)
    finally:
        central.close()


def test_outbox_on_the_data_volume_survives_the_container(box, mosquitto_factory, rtsp_server):
    broker = mosquitto_factory(start=False)  # central's broker is down while the alarm is raised
    srv = rtsp_server({"rail": FOOTAGE / "rail_intrusion.mp4"})
    box.configure(broker.port, {"rail": srv.url("rail")})
    first = box.start()
    assert wait_for(lambda: any(e["type"] == EXPECTED["type"] and e["phase"] == "start" for e in box.outbox_alarms()),
                    120, step=0.5), box.logs(first)
    waiting = {e["event_id"] for e in box.outbox_alarms() if e["type"] == EXPECTED["type"] and e["phase"] == "start"}
    podman("rm", "-f", "-t", "0", first)  # the container is gone (killed, not stopped): only the volume remains

    broker.start()
    central = Listener(broker.port, Topics("edge", "s1", "d1"))
    try:
        # the new container watches a camera that shows nothing, so anything it sends came from the outbox
        box.configure(broker.port, {"rail": f"rtsp://127.0.0.1:{free_port()}/gone"})
        second = box.start()
        assert wait_for(lambda: waiting <= {e["event_id"] for e in intrusion_starts(central)}, 120, step=0.5), \
            box.logs(second)
        assert wait_for(lambda: not box.outbox_alarms(), 30), box.logs(second)  # every alarm acknowledged
        time.sleep(2)  # room for a duplicate to show up, were one sent
        received = [e["event_id"] for e in intrusion_starts(central)]
        assert sorted(received) == sorted(waiting), received  # each exactly once
    finally:
        central.close()


def test_jetson_python_steps_build_and_run_in_the_x86_image(image):
    """Dockerfile.jetson built FROM the x86 build stage instead of L4T, with PyPI's CPU onnxruntime in
    place of the Jetson wheel: everything but the GPU parts (see the file's header)."""
    res = subprocess.run([str(ROOT / "scripts" / "build_image.sh"), "--tag", IMAGE, "--jetson-on-x86"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"Dockerfile.jetson build failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    jetson = f"{IMAGE}-jetson-steps"
    probe = ("import av, onnxruntime, edge_agent, json; "
             "print(json.dumps([av.__version__, onnxruntime.get_available_providers()]))")
    out = podman("run", "--rm", "--entrypoint", "python3", jetson, "-c", probe).stdout
    av_version, providers = json.loads(out.strip().splitlines()[-1])
    assert av_version.startswith("17."), av_version  # the last PyAV for JetPack 6's Python 3.10
    assert "CPUExecutionProvider" in providers
    assert podman("run", "--rm", jetson, "--version").stdout.startswith("edge-agent ")
    assert podman("run", "--rm", "--entrypoint", "id", jetson).stdout.split()[0] == f"uid={CONTAINER_UID}(edge)"
