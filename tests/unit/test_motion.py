"""SceneWatch: motion gating of quiet cameras and tamper detection on a tiny grey picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.detect.motion import SceneWatch, motion_fraction, small_from_bgr

DATA = Path(__file__).resolve().parents[1] / "data" / "backgrounds"


def scene(name: str = "train-tracks1.jpg") -> np.ndarray:
    path = DATA / name
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def with_person(image: np.ndarray, x: int) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (x, 150), (x + 30, 260), (20, 20, 20), -1)
    return out


def test_quiet_camera_is_analysed_only_every_idle_interval():
    watch = SceneWatch(idle_interval_s=2.0, phase=0.0)
    small = small_from_bgr(scene())
    analysed = [t for t in np.arange(0, 6, 0.2) if watch.observe(small, float(t)).analyse]
    assert np.allclose(analysed, [0.0, 2.0, 4.0])
    # cameras started together re-check at different phases (no burst every idle interval)
    watch = SceneWatch(idle_interval_s=2.0, phase=0.5)
    analysed = [t for t in np.arange(0, 6, 0.2) if watch.observe(small, float(t)).analyse]
    assert np.allclose(analysed, [0.0, 1.0, 3.0, 5.0])


def test_motion_and_active_tracks_keep_the_camera_analysed():
    base = scene()
    watch = SceneWatch(idle_interval_s=10.0)
    watch.observe(small_from_bgr(base), 0.0)
    decisions = [watch.observe(small_from_bgr(with_person(base, 40 + 25 * i)), 0.2 * (i + 1)) for i in range(5)]
    assert all(d.analyse and d.motion > 0 and not d.following for d in decisions)  # motion alone
    # a stationary object inside a zone: no motion, but the rules need to see it stay
    active = {"on": True}
    watch = SceneWatch(idle_interval_s=10.0, active=lambda: active["on"])
    still = small_from_bgr(with_person(base, 100))
    assert all(d.analyse and d.following for d in (watch.observe(still, 0.2 * i) for i in range(10)))
    active["on"] = False
    assert not watch.observe(still, 2.2).analyse


def test_noise_alone_is_not_motion():
    base = scene().astype(np.int16)
    rng = np.random.default_rng(1)
    noisy = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    assert motion_fraction(small_from_bgr(base.astype(np.uint8)), small_from_bgr(noisy)) < 0.002


def test_black_picture_is_tampered_after_hold_and_clears():
    watch = SceneWatch(idle_interval_s=2.0, tamper_hold_s=1.0)
    good = small_from_bgr(scene())
    black = small_from_bgr(np.zeros((360, 480, 3), np.uint8))
    for i in range(10):
        assert watch.observe(good, 0.2 * i).tamper is None
    states = [watch.observe(black, 2.0 + 0.2 * i).tamper for i in range(8)]
    assert states[0] is None and states[-1] == "uniform"  # held 1 s before it counts
    decision = watch.observe(black, 3.6)
    assert decision.analyse or decision.tamper == "uniform"
    assert watch.observe(good, 4.0).tamper is None


def test_camera_turned_away_is_tampered():
    watch = SceneWatch(idle_interval_s=2.0, tamper_hold_s=1.0)
    usual = small_from_bgr(scene("train-tracks1.jpg"))
    other = small_from_bgr(scene("beach-malibu.jpg"))
    for i in range(20):
        watch.observe(usual, 0.2 * i)
    states = [watch.observe(other, 4.0 + 0.2 * i).tamper for i in range(8)]
    assert states[-1] == "changed"
    # a person walking through the usual view is not tampering
    watch2 = SceneWatch(idle_interval_s=2.0, tamper_hold_s=1.0)
    for i in range(20):
        watch2.observe(usual, 0.2 * i)
    walk = [watch2.observe(small_from_bgr(with_person(scene(), 40 + 20 * i)), 4.0 + 0.2 * i).tamper for i in range(15)]
    assert all(s is None for s in walk)


BACKGROUNDS = sorted(p.name for p in DATA.glob("*.jpg"))


def _tamper_after(usual: np.ndarray, later: list[np.ndarray]) -> list[str | None]:
    """Tamper states over `later` pictures (5 a second) once `usual` has been seen for 4 s."""
    watch = SceneWatch(idle_interval_s=2.0, tamper_hold_s=1.0)
    for i in range(20):
        watch.observe(small_from_bgr(usual), 0.2 * i)
    return [watch.observe(small_from_bgr(p), 4.0 + 0.2 * i).tamper for i, p in enumerate(later)]


def _ir_night(image: np.ndarray, gain: float) -> np.ndarray:
    """The day/night IR switch: no colour, foliage bright (near infrared), the level jumps."""
    b, g, r = (image[:, :, i].astype(np.float32) for i in range(3))
    grey = 0.11 * b + 0.59 * g + 0.30 * r + 0.6 * np.clip(g - np.maximum(r, b), 0, None)
    return np.repeat(np.clip(grey * gain, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


@pytest.mark.parametrize("usual", BACKGROUNDS)
@pytest.mark.parametrize("gain", [0.5, 1.7])
def test_ir_switch_and_light_changes_are_not_tampering(usual, gain):
    """Issue 10 item 6: the IR switch (colour to grey with a jump) and light dimming or brightening
    over the whole picture keep the view (the brightness difference alone called them "changed"),
    while the camera turned away is still noticed (test_camera_turned_away_is_tampered)."""
    image = scene(usual)
    assert _tamper_after(image, [_ir_night(image, gain)] * 30) == [None] * 30
    scaled = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    assert _tamper_after(image, [scaled] * 30) == [None] * 30


def test_a_camera_black_from_its_first_frame_is_tampered():
    watch = SceneWatch(idle_interval_s=2.0, tamper_hold_s=1.0)
    black = small_from_bgr(np.zeros((360, 480, 3), np.uint8))
    states = [watch.observe(black, 0.2 * i).tamper for i in range(8)]
    assert states[0] is None and states[-1] == "uniform"


def _walk_720p(noise: float, seconds: float = 6.0, fps: float = 5.0, person_px: int = 28):
    """A still 720p rail scene with sensor noise; a `person_px` tall person walks at about
    1.4 m/s (scaled by their height: 1.7 m) along the far track bed, from x=500."""
    from tests.data.scenes import compose, cutout

    bg = cv2.resize(scene(), (1280, 720), interpolation=cv2.INTER_CUBIC)
    cut = cutout("dan1")
    rng = np.random.default_rng(7)
    px_per_s = 1.4 * person_px / 1.7
    frames = []
    for i in range(int(seconds * fps)):
        img = bg if person_px == 0 else compose(bg, cut, int(500 + px_per_s * i / fps), 300, person_px)[0]
        noisy = np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
        frames.append(noisy)
    return frames


FAR_TRACK = [(0.3, 0.3, 0.6, 0.45)]  # the zone's region around the far part of the track bed


def test_a_28_px_walker_opens_the_gate_on_every_sampled_frame():
    """Issue 10: at 64 px wide a 28 px person in 720p was about one pixel, and the gate stayed shut
    between idle checks; measured inside the zone at 320 px wide it is several cells."""
    watch = SceneWatch(idle_interval_s=30.0, regions=FAR_TRACK, phase=0.0)
    frames = _walk_720p(noise=6.0)
    decisions = [watch.observe(small_from_bgr(f), 0.2 * i) for i, f in enumerate(frames)]
    assert all(d.analyse for d in decisions), [round(d.motion, 5) for d in decisions]


def test_sensor_noise_in_a_still_scene_keeps_the_gate_shut():
    watch = SceneWatch(idle_interval_s=30.0, regions=FAR_TRACK, phase=0.0)
    frames = _walk_720p(noise=6.0, person_px=0)
    opened = [i for i, f in enumerate(frames) if watch.observe(small_from_bgr(f), 0.2 * i).analyse]
    assert opened == [0]  # the first frame only (the camera's first look)


def test_motion_away_from_the_zones_does_not_open_the_gate():
    watch = SceneWatch(idle_interval_s=30.0, regions=[(0.0, 0.0, 0.2, 0.2)], phase=0.0)  # a zone elsewhere
    frames = _walk_720p(noise=6.0)
    opened = [i for i, f in enumerate(frames) if watch.observe(small_from_bgr(f), 0.2 * i).analyse]
    assert opened == [0]


def _fade_in(seconds: float = 12.0, fps: float = 5.0, start: float = 1.0, until: float = 3.0, most: float = 0.6):
    """(t, 720p frame, truth box): the still rail scene with sensor noise; a 40 px person fades in
    between `start` and `until` to `most` of their contrast (haze lifting, dusk light on them), so
    no two samples differ by the motion gate's level, then stays."""
    from tests.data.scenes import compose, cutout

    bg = cv2.resize(scene(), (1280, 720), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    person, box = compose(bg.astype(np.uint8), cutout("dan1"), 560, 310, 40)
    rng = np.random.default_rng(11)
    for i in range(int(seconds * fps)):
        t = i / fps
        a = most * min(1.0, max(0.0, (t - start) / (until - start)))
        img = bg * (1 - a) + person.astype(np.float32) * a + rng.normal(0, 3.0, bg.shape)
        yield t, np.clip(img, 0, 255).astype(np.uint8), box


def test_a_quiet_unchanged_picture_is_not_checked_again_until_unchanged_max_s():
    """An idle check of the picture the detector saw last finds what it found: with sensor noise
    and nothing else, a still camera is analysed every `unchanged_max_s`, not every idle interval."""
    frames = _walk_720p(noise=3.0, seconds=24.0, person_px=0)
    for max_s, expected in ((10.0, [0.0, 10.0, 20.0]), (0.0, list(np.arange(0.0, 24.0, 2.0)))):
        watch = SceneWatch(idle_interval_s=2.0, regions=FAR_TRACK, phase=0.0, unchanged_max_s=max_s)
        analysed = [0.2 * i for i, f in enumerate(frames) if watch.observe(small_from_bgr(f), 0.2 * i).analyse]
        assert np.allclose(analysed, expected), (max_s, analysed)


def test_a_faint_arrival_the_motion_gate_misses_is_checked_at_the_next_idle_check():
    """The person fades in too slowly for the gate (no two samples differ enough), but the picture
    differs from the one last analysed: each idle check runs while it does, its change map (what
    the tiles look at) on the person, and none once the picture is still again."""
    watch = SceneWatch(idle_interval_s=2.0, regions=FAR_TRACK, phase=0.0, unchanged_max_s=10.0)
    analysed = {}
    for t, frame, box in _fade_in():
        decision = watch.observe(small_from_bgr(frame), t)
        assert not decision.urgent or t == 0.0, t
        if decision.analyse:
            analysed[round(t, 1)] = decision
    assert list(analysed) == [0.0, 2.0, 4.0]
    x1, y1, x2, y2 = box
    for t in (2.0, 4.0):
        changes = analysed[t].changes
        sy, sx = changes.shape[0] / 720, changes.shape[1] / 1280
        inside = changes[int(y1 * sy): int(np.ceil(y2 * sy)), int(x1 * sx): int(np.ceil(x2 * sx))]
        assert inside.sum() >= 3 and inside.sum() >= 0.8 * changes.sum(), (t, inside.sum(), changes.sum())


def _rain_720p(n: int = 10) -> list[np.ndarray]:
    """The still rail scene under rain: a few hundred thin bright streaks, new on every sample."""
    bg = cv2.resize(scene(), (1280, 720), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(n):
        img = bg.copy()
        for x, y in zip(rng.integers(0, 1280, 260), rng.integers(0, 720, 260)):
            cv2.line(img, (int(x), int(y)), (int(x) + 6, int(y) + 38), (235, 235, 235), 1)
        frames.append(img)
    return frames


def test_a_walker_is_object_sized_motion_and_rain_and_noise_are_not():
    """What a saturated box serves first among motion alone (detect/batcher.py): the change of an
    object, a blob, not rain's streaks or sensor noise scattered over the picture."""
    walk = SceneWatch(idle_interval_s=30.0, regions=FAR_TRACK, phase=0.0)
    moves = [walk.observe(small_from_bgr(f), 0.2 * i) for i, f in enumerate(_walk_720p(noise=6.0))]
    assert not moves[0].object_motion and all(d.object_motion for d in moves[1:])
    rain = SceneWatch(idle_interval_s=30.0, regions=FAR_TRACK, phase=0.0, learn=False)
    drops = [rain.observe(small_from_bgr(f), 0.2 * i) for i, f in enumerate(_rain_720p())]
    assert all(d.urgent for d in drops)  # unlearned, rain opens the gate
    assert not any(d.object_motion for d in drops)
    still = SceneWatch(idle_interval_s=30.0, regions=FAR_TRACK, phase=0.0)
    assert not any(still.observe(small_from_bgr(f), 0.2 * i).object_motion
                   for i, f in enumerate(_walk_720p(noise=6.0, person_px=0)))
