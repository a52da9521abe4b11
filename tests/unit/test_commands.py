"""Command validation, expiry, signatures and replay protection (no broker needed)."""

from __future__ import annotations

import json

from edge_agent.clock import FakeClock, iso_utc
from edge_agent.publish.commands import CommandDispatcher, envelope, sign

TOPIC = "edge/site1/dev1/cmd/ping"
SECRET = "s3cret"


class Props:
    def __init__(self, sig: str) -> None:
        self.UserProperty = [("sig", sig)]


def cmd(clock: FakeClock, rid: str = "r1", ttl: float = 30, **kw) -> dict:
    return {"request_id": rid, "issued_at": iso_utc(clock.now()), "ttl": ttl, "args": {}, **kw}


def raw(d: dict) -> bytes:
    return json.dumps(d).encode()


def test_ping_works_unsigned_and_echoes_request_id():
    clock = FakeClock()
    reply = CommandDispatcher(clock=clock).handle(TOPIC, raw(cmd(clock)))
    assert reply["ok"] is True and reply["request_id"] == "r1" and reply["result"]["pong"] is True


def test_malformed_payloads_get_error_replies_not_exceptions():
    clock = FakeClock()
    d = CommandDispatcher(clock=clock)
    assert "not JSON" in d.handle(TOPIC, b"\xff{nope")["error"]
    r = d.handle(TOPIC, raw({"request_id": "r2", "issued_at": "2026-01-01T00:00:00Z"}))
    assert r["ok"] is False and r["request_id"] == "r2" and "expires_at or ttl" in r["error"]
    assert "request_id" in d.handle(TOPIC, raw({"issued_at": 1, "ttl": 5}))["error"]
    assert "extra" in d.handle(TOPIC, raw(cmd(clock, "r3", bogus=1)))["error"].lower()
    assert "ISO 8601" in d.handle(TOPIC, raw(cmd(clock, "r4", issued_at="yesterday")))["error"]
    assert "unknown" in d.handle("edge/site1/dev1/cmd/selfdestruct", raw(cmd(clock, "r5")))["error"]
    assert "not available" in d.handle("edge/site1/dev1/cmd/snapshot", raw(cmd(clock, "r6")))["error"]
    assert d.counts == {"executed": 0, "refused": 7}


def test_expired_command_is_refused_and_not_executed():
    clock = FakeClock()
    calls = []
    d = CommandDispatcher({"ack": lambda args: calls.append(args) or {}}, clock=clock)
    payload = raw(cmd(clock, ttl=10))
    clock.advance(11)
    reply = d.handle("edge/site1/dev1/cmd/ack", payload)
    assert reply["ok"] is False and reply["error"].startswith("expired") and calls == []
    later = raw({"request_id": "r9", "issued_at": clock.now() - 5, "expires_at": iso_utc(clock.now() - 1)})
    assert d.handle("edge/site1/dev1/cmd/ack", later)["error"].startswith("expired")


def test_replayed_command_is_refused_until_it_expires():
    clock = FakeClock()
    d = CommandDispatcher(clock=clock)
    payload = raw(cmd(clock, ttl=10))
    assert d.handle(TOPIC, payload)["ok"] is True
    assert "replayed" in d.handle(TOPIC, payload)["error"]


def test_signed_envelope_and_user_property_accepted_tampering_and_unsigned_refused():
    clock = FakeClock()
    d = CommandDispatcher(secret=SECRET, require_signed=True, clock=clock)
    assert d.handle(TOPIC, envelope(SECRET, TOPIC, cmd(clock, "a")))["ok"] is True
    body = raw(cmd(clock, "b"))
    assert d.handle(TOPIC, body, Props(sign(SECRET, TOPIC, body)))["ok"] is True
    assert "unsigned" in d.handle(TOPIC, raw(cmd(clock, "c")))["error"]
    # the signature binds the topic: the same envelope on another command topic fails
    other = "edge/site1/dev1/cmd/reload"
    assert d.handle(other, envelope(SECRET, TOPIC, cmd(clock, "d")))["error"] == "bad signature"
    assert d.handle(TOPIC, envelope("guess", TOPIC, cmd(clock, "e")))["error"] == "bad signature"
    tampered = json.loads(envelope(SECRET, TOPIC, cmd(clock, "f")))
    tampered["body"] = tampered["body"].replace('"ttl":30', '"ttl":3000')
    assert d.handle(TOPIC, raw(tampered))["error"] == "bad signature"


def test_handler_errors_become_replies_and_own_reply_topic_is_ignored():
    clock = FakeClock()
    d = CommandDispatcher({"zone": lambda args: 1 / 0}, clock=clock)
    reply = d.handle("edge/site1/dev1/cmd/zone", raw(cmd(clock)))
    assert reply["ok"] is False and "ZeroDivisionError" in reply["error"]
    assert d.handle("edge/site1/dev1/cmd/reply", raw({"request_id": "x"})) is None


def test_expiry_too_far_ahead_is_refused_so_nonces_stay_bounded():
    clock = FakeClock()
    d = CommandDispatcher(clock=clock, max_ttl_s=60)
    assert "more than 60 s" in d.handle(TOPIC, raw(cmd(clock, ttl=3600)))["error"]


def test_a_replay_after_a_restart_is_refused(tmp_path):
    """Request ids lived only in memory: a captured command replayed after a reboot ran again."""
    from edge_agent.publish.outbox import Outbox

    clock = FakeClock()
    payload = envelope(SECRET, TOPIC, cmd(clock, "boot-1", ttl=600))
    box = Outbox(tmp_path / "outbox.sqlite", 1 << 20)
    assert CommandDispatcher(secret=SECRET, clock=clock, nonces=box).handle(TOPIC, payload)["ok"] is True
    box.close()
    box = Outbox(tmp_path / "outbox.sqlite", 1 << 20)  # the agent restarted
    again = CommandDispatcher(secret=SECRET, clock=clock, nonces=box)
    assert "replayed" in again.handle(TOPIC, payload)["error"]
    clock.advance(601)  # expired ids are forgotten; the command itself is refused as expired
    assert again.handle(TOPIC, payload)["error"].startswith("expired")
    fresh = envelope(SECRET, TOPIC, cmd(clock, "boot-2", ttl=60))
    assert again.handle(TOPIC, fresh)["ok"] is True
    assert [r for (r,) in box._db.execute("SELECT request_id FROM nonces")] == ["boot-2"]  # stays bounded
    box.close()


def test_error_replies_never_carry_credentials_or_the_command_secret():
    clock = FakeClock()

    def leaky(args):
        raise ValueError(f"cannot open rtsp://admin:hunter2@10.0.0.9/live with key {SECRET}")

    d = CommandDispatcher({"snapshot": leaky}, secret=SECRET, clock=clock)
    topic = "edge/site1/dev1/cmd/snapshot"
    reply = d.handle(topic, envelope(SECRET, topic, cmd(clock, "leak")))
    assert reply["ok"] is False and "rtsp://***@10.0.0.9/live" in reply["error"]
    assert "hunter2" not in json.dumps(reply) and SECRET not in json.dumps(reply)


def test_a_configured_secret_requires_signed_commands_unless_explicitly_relaxed(tmp_path):
    """With a secret but the default require_signed_commands=false, unsigned commands ran: the
    secret protected nothing."""
    from edge_agent.config.models import Mqtt, Outbox
    from edge_agent.publish.publisher import command_dispatcher

    def dispatcher(**kw) -> CommandDispatcher:
        return command_dispatcher(Mqtt(outbox=Outbox(path=str(tmp_path / "o.sqlite")), **kw), None, FakeClock())

    strict = dispatcher(command_secret=SECRET)
    assert strict.require_signed is True
    assert "unsigned" in strict.handle(TOPIC, raw(cmd(FakeClock())))["error"]
    assert dispatcher().require_signed is False  # no secret: nothing to sign with
    relaxed = dispatcher(command_secret=SECRET, require_signed_commands=False)
    assert relaxed.require_signed is False
    assert relaxed.handle(TOPIC, raw(cmd(FakeClock())))["ok"] is True  # unsigned runs, as asked
