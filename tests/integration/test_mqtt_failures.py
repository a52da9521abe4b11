"""Wrong password, wrong CA, broker absent: a clear log line, alarms keep queueing, delivered once fixed."""

from __future__ import annotations

import logging

from edge_agent.publish.publisher import MqttSink
from tests.fixtures.mosquitto import mqtt_settings, sample_event

MQTT_LOG = "edge_agent.publish.mqtt"


def wait_for_log(caplog, text: str, timeout: float = 10) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in caplog.records:
            if rec.name == MQTT_LOG and text in rec.getMessage():
                return rec.getMessage()
        time.sleep(0.05)
    raise AssertionError(f"no log line with {text!r}: {[r.getMessage() for r in caplog.records]}")


def emit_three(sink: MqttSink) -> list[str]:
    return [sink.emit(sample_event(i), {}).event_id for i in range(3)]


def test_wrong_password_is_logged_queued_and_delivered_once_the_broker_accepts_it(
    mosquitto_factory, central_factory, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger=MQTT_LOG)
    broker = mosquitto_factory(users={"agent": "right-pass", "central": "cpass"})
    central = central_factory(mqtt_settings(broker, tmp_path / "c.sqlite", username="central", password="cpass"),
                              tmp_path / "central")
    central.wait_connected()
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite", username="agent", password="Wr0ng-S3cret")
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        sent = emit_three(sink)
        line = wait_for_log(caplog, "login refused")
        assert "reason code 13" in line and "password" in line  # 134 bad user/pass or 135 not authorized
        assert sink.outbox.pending_events() == 3
        broker.set_users({"agent": "Wr0ng-S3cret", "central": "cpass"})  # the fix, then SIGHUP
        assert central.wait_complete(3, timeout=20), central.lines
    finally:
        sink.close(1)
    assert [e["event_id"] for e in central.events()] == sent
    assert all("Wr0ng-S3cret" not in r.getMessage() for r in caplog.records)


def test_wrong_ca_is_logged_queued_and_delivered_with_the_right_ca(
    mosquitto_factory, central_factory, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger=MQTT_LOG)
    broker = mosquitto_factory(tls=True)
    central = central_factory(mqtt_settings(broker, tmp_path / "c.sqlite"), tmp_path / "central")
    central.wait_connected()
    good = mqtt_settings(broker, tmp_path / "outbox.sqlite")
    bad = good.model_copy(update={"tls": good.tls.model_copy(update={"ca_file": str(broker.tls.other_ca)})})
    sink = MqttSink(bad, "site1", "dev1").start()
    sent = emit_three(sink)
    line = wait_for_log(caplog, "TLS failure")
    assert "certificate verify failed" in line and "ca_file" in line
    assert sink.outbox.pending_events() == 3
    sink.close(0.2)
    fixed = MqttSink(good, "site1", "dev1").start()  # the operator fixes the config and restarts
    try:
        assert central.wait_complete(3, timeout=20), central.lines
    finally:
        fixed.close(1)
    assert [e["event_id"] for e in central.events()] == sent


def test_broker_absent_at_start_is_logged_and_delivered_when_it_appears(
    mosquitto_factory, central_factory, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger=MQTT_LOG)
    broker = mosquitto_factory()
    central = central_factory(mqtt_settings(broker, tmp_path / "c.sqlite"), tmp_path / "central")
    central.wait_connected()  # central's persistent session exists, then the broker goes
    broker.stop()
    sink = MqttSink(mqtt_settings(broker, tmp_path / "outbox.sqlite"), "site1", "dev1").start()
    try:
        sent = emit_three(sink)
        line = wait_for_log(caplog, "broker absent")
        assert f"127.0.0.1:{broker.port}" in line and "connection refused" in line
        broker.start()
        assert central.wait_complete(3, timeout=20), central.lines
    finally:
        sink.close(1)
    assert [e["event_id"] for e in central.events()] == sent


def test_client_certificate_is_presented_when_configured(mosquitto_factory, central_factory, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=MQTT_LOG)
    broker = mosquitto_factory(tls=True, require_client_cert=True)
    tls = broker.tls
    base = mqtt_settings(broker, tmp_path / "c.sqlite")
    with_cert = base.tls.model_copy(update={"cert_file": str(tls.client_cert), "key_file": str(tls.client_key)})
    central = central_factory(base.model_copy(update={"tls": with_cert}), tmp_path / "central")
    central.wait_connected()
    no_cert = MqttSink(mqtt_settings(broker, tmp_path / "bad.sqlite"), "site1", "dev0").start()
    try:
        line = wait_for_log(caplog, "edge-agent-site1-dev0: broker")  # the broker wants a certificate
        assert "closed the connection before accepting the login" in line and "cert_file" in line
    finally:
        no_cert.close(0.2)
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite").model_copy(update={"tls": with_cert})
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        sent = emit_three(sink)
        assert central.wait_complete(3, timeout=20), central.lines
    finally:
        sink.close(1)
    assert [e["event_id"] for e in central.events()] == sent


def test_password_from_environment_or_file_and_a_missing_one_is_a_clear_error(
    mosquitto_factory, central_factory, tmp_path, monkeypatch
):
    import pytest

    from edge_agent.errors import EdgeAgentError

    broker = mosquitto_factory(users={"agent": "env-S3cret", "central": "cpass"})
    central = central_factory(mqtt_settings(broker, tmp_path / "c.sqlite", username="central", password="cpass"),
                              tmp_path / "central")
    central.wait_connected()
    monkeypatch.setenv("EDGE_TEST_MQTT_PW", "env-S3cret")
    sink = MqttSink(mqtt_settings(broker, tmp_path / "o.sqlite", username="agent", password_env="EDGE_TEST_MQTT_PW"),
                    "site1", "dev1").start()
    try:
        sent = emit_three(sink)
        assert central.wait_complete(3, timeout=20), central.lines
    finally:
        sink.close(1)
    assert [e["event_id"] for e in central.events()] == sent
    pw_file = tmp_path / "pw"
    pw_file.write_text("env-S3cret\n")
    filed = MqttSink(mqtt_settings(broker, tmp_path / "o2.sqlite", username="agent", password_file=str(pw_file)),
                     "site1", "dev2").start()
    try:
        assert filed.link.connected.wait(10), filed.link.last_error
    finally:
        filed.close(0.5)
    monkeypatch.delenv("EDGE_TEST_MQTT_PW")
    with pytest.raises(EdgeAgentError, match="EDGE_TEST_MQTT_PW is not set"):
        MqttSink(mqtt_settings(broker, tmp_path / "o3.sqlite", username="agent", password_env="EDGE_TEST_MQTT_PW"),
                 "site1", "dev3")
