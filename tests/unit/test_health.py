"""Health: per-camera fps in and analysed (the issue asks for rates, not only totals) and disk use."""

from __future__ import annotations

from edge_agent.clock import FakeClock
from edge_agent.health import Health, disk_use


def test_fps_in_and_analysed_follow_the_recent_rate():
    clock = FakeClock()
    health = Health(clock)
    health.register("cam")
    for _ in range(30):  # 25 fps in, 5 analysed, for 30 s
        for i in range(25):
            health.frame_seen("cam")
            if i % 5 == 0:
                health.count("cam", "frames_analysed")
        clock.advance(1.0)
        health.snapshot()
    cam = health.snapshot()["cameras"]["cam"]
    assert abs(cam["fps_in"] - 25) < 1 and abs(cam["fps_analysed"] - 5) < 0.5, cam
    for _ in range(15):  # the camera stops: the rates fall to zero within the window
        clock.advance(1.0)
        health.snapshot()
    cam = health.snapshot()["cameras"]["cam"]
    assert cam["fps_in"] == 0 and cam["fps_analysed"] == 0, cam
    assert cam["counters"]["frames_in"] == 750


def test_disk_use_reports_outbox_size_and_free_space(tmp_path):
    db = tmp_path / "outbox.sqlite"
    db.write_bytes(b"x" * 1000)
    (tmp_path / "outbox.sqlite-wal").write_bytes(b"y" * 500)
    use = disk_use(db, tmp_path / "not-yet" / "media")
    assert use["outbox_bytes"] == 1500
    assert use["outbox_free_bytes"] > 0 and use["store_free_bytes"] > 0
    assert use["store_total_bytes"] >= use["store_free_bytes"]
