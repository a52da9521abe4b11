"""`edge-agent cmd`'s sender against a real agent sink on a real mosquitto: signed with the config's
secret, the reply comes back; a refusal comes back with its reason; a wrong secret is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.clock import SystemClock
from edge_agent.errors import EdgeAgentError
from edge_agent.publish.publisher import MqttSink, command_dispatcher
from edge_agent.publish.sender import parse_args, send_command
from tests.fixtures.mosquitto import mqtt_settings

SECRET = "s3cret"


def _zone(args: dict) -> dict:
    if not isinstance(args.get("enabled"), bool):
        raise ValueError("args.enabled must be true or false")
    return {"camera": args["camera"], "zone": args["zone"], "enabled": args["enabled"]}


def test_cmd_signs_sends_and_prints_the_reply(tmp_path: Path, mosquitto) -> None:
    agent_cfg = mqtt_settings(mosquitto, tmp_path / "o.sqlite", command_secret=SECRET)
    sink = MqttSink(agent_cfg, "site1", "dev1",
                    dispatcher=command_dispatcher(agent_cfg, {"zone": _zone}, SystemClock())).start()
    try:
        tool = mqtt_settings(mosquitto, tmp_path / "unused.sqlite", command_secret=SECRET)
        reply, _ = send_command(tool, "site1", "dev1", "zone", parse_args(["zone=track", "enabled=false"], "c1"))
        assert reply["ok"] and reply["result"] == {"camera": "c1", "zone": "track", "enabled": False}
        text, _ = send_command(tool, "site1", "dev1", "zone", parse_args(["zone=track", 'enabled="no"'], "c1"))
        assert not text["ok"] and "args.enabled must be true or false" in text["error"]
        wrong = tool.model_copy(update={"command_secret": "guess"})
        forged, _ = send_command(wrong, "site1", "dev1", "ping", {})
        assert not forged["ok"] and "signature" in forged["error"]
        with pytest.raises(EdgeAgentError, match="no reply to ping within 2 s"):
            send_command(tool, "site1", "other-device", "ping", {}, timeout=2)
    finally:
        sink.close(2)


def test_arguments_are_json_when_they_parse() -> None:
    assert parse_args(["enabled=true", "n=3", "by=ops 7"], "cam") == \
        {"camera": "cam", "enabled": True, "n": 3, "by": "ops 7"}
    with pytest.raises(EdgeAgentError, match="write key=value"):
        parse_args(["enabled"], None)


def test_central_prints_replies_and_health_only_when_asked(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from edge_agent.config.models import Mqtt
    from edge_agent.publish.central import Central, client_settings

    for show, expect in ((set(), 0), ({"replies", "health"}, 2)):
        lines: list[str] = []
        central = Central(tmp_path / f"c{expect}", "edge", echo=lines.append, show=show)
        central.handle("edge/s1/d1/cmd/reply", b'{"request_id":"r1","command":"ping","ok":true}')
        central.handle("edge/s1/d1/health", b'{"cameras":{"gate":{"state":"online"}},"events":4}')
        central.close()
        assert len(lines) == expect
    assert lines[0].startswith("REPLY s1/d1 ") and '"request_id":"r1"' in lines[0]
    assert lines[1] == "HEALTH s1/d1 cameras gate=online; events 4"
    device = Mqtt(username="edge-01", password_env="DEVICE_PW")
    own = client_settings(device, SimpleNamespace(username="central", password_env="CENTRAL_PW"))
    assert (own.username, own.password_env, own.password) == ("central", "CENTRAL_PW", None)
