"""Shared detector plumbing: options, letterbox, NMS, ONNX Runtime sessions and a batching base class.

Every ONNX backend subclasses `OnnxDetector` and implements only `decode` (and `preprocess` when
its input is not RGB/255). Constructor convention for every backend:
`Cls(path: Path, options: DetectorOptions, entry: dict | None)`, where `entry` is the model's
models.yaml entry (names, input size) or None for a user-supplied file.
"""

from __future__ import annotations

import ast
import json

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np

from ..errors import ModelError
from ..frames import Detections, iou_matrix
from .rect import free_input_shape, probe, rect_size, uses_rect

if TYPE_CHECKING:  # config imports pydantic; keep detector imports light
    import onnxruntime as ort

    from ..config import models as config_models

log = logging.getLogger(__name__)

FIX_HINT = "run `edge-agent models fetch` (add --force to download and convert again)"

_ORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ORDER = ["tensorrt", "cuda", "cpu"]
CPU = _ORT_NAMES["cpu"]

# A decoded candidate set for one image: (xyxy in letterboxed input pixels, scores, class ids).
Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class DetectorOptions:
    """How to run a detector; mirrors `config.models.Detector`."""

    providers: list[str] = field(default_factory=lambda: ["cpu"])
    min_score: float = 0.25
    iou: float = 0.45
    trt_fp16: bool = True
    trt_cache_dir: str = "models/cache"
    threads: int = 0  # intra-op threads; 0 = one per core, at most 4 (the box runs decode too)
    rect: bool = True  # full frames into the smallest stride multiple that holds them (rect.py)

    @classmethod
    def from_config(cls, cfg: config_models.Detector) -> DetectorOptions:
        return cls(
            providers=list(cfg.providers),
            min_score=float(cfg.min_score),
            trt_fp16=bool(cfg.trt_fp16),
            trt_cache_dir=str(cfg.trt_cache_dir),
            rect=bool(cfg.rect_input),
        )


def letterbox(
    image_bgr: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping aspect ratio into `size` (w, h), centred on grey 114.

    Returns (padded image, scale, (pad_x, pad_y)); a source pixel p maps to p * scale + pad.
    """
    w, h = size
    ih, iw = image_bgr.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    pad_x, pad_y = (w - nw) // 2, (h - nh) // 2
    out = np.full((h, w, 3), 114, dtype=np.uint8)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = image_bgr if (nw, nh) == (iw, ih) else cv2.resize(image_bgr, (nw, nh), interpolation=interp)
    out[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return out, scale, (float(pad_x), float(pad_y))


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression within each class; returns kept indices, best first."""
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = xyxy.astype(np.float32)
    # Shift each class into its own region so one pass never suppresses across classes.
    offset = (class_ids.astype(np.float32) * (float(boxes.max()) + 1.0))[:, None]
    boxes = boxes + offset
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[iou_matrix(boxes[i : i + 1], boxes[rest])[0] <= iou]
    return np.asarray(keep, dtype=np.int64)


def class_names_from(value: Any, where: str) -> list[str]:
    """Class names indexed by class id, from a list or an {id: name} mapping (Ultralytics' `names`
    in a checkpoint or an ONNX export). Gaps in the ids are filled with the id itself, so the list
    index is always the class id the model outputs."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if not isinstance(value, dict) or not value:
        raise ModelError(f"{where}: class names should map class ids to names, got {str(value)[:80]!r}")
    try:
        ids = {int(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError) as err:
        raise ModelError(f"{where}: class names have non-integer class ids: {str(value)[:80]!r}") from err
    return [ids.get(i, str(i)) for i in range(max(ids) + 1)]


def parse_names(text: str, where: str) -> list[str]:
    """Ultralytics' `names` metadata ("{0: 'person', 1: 'bicycle'}") -> names indexed by class id."""
    try:
        value: Any = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise ModelError(f"{where}: metadata 'names' is not a dict literal: {text[:80]!r}") from err
    return class_names_from(value, where)


def check_model_file(path: Path) -> None:
    """Raise ModelError when the file is missing or empty (the common broken-download cases)."""
    if not path.exists():
        raise ModelError(f"model file {path} not found; {FIX_HINT}")
    if path.is_dir() or path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty or not a file; {FIX_HINT}")


def _provider_list(options: DetectorOptions, available: list[str]) -> tuple[list[Any], list[str]]:
    """ORT provider list (names with options) in TensorRT, CUDA, CPU order, available ones only."""
    wanted = [p for p in _ORDER if p in {x.lower() for x in options.providers}] or ["cpu"]
    if "cpu" not in wanted:
        wanted.append("cpu")  # always have somewhere to run the nodes a GPU provider rejects
    providers: list[Any] = []
    missing: list[str] = []
    for key in wanted:
        name = _ORT_NAMES[key]
        if name not in available:
            missing.append(key)
            continue
        if key == "tensorrt":
            Path(options.trt_cache_dir).mkdir(parents=True, exist_ok=True)
            trt = {
                "trt_fp16_enable": bool(options.trt_fp16),
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(options.trt_cache_dir),
            }
            providers.append((name, trt))
        else:
            providers.append(name)
    return providers, missing


def make_session(path: Path | str, options: DetectorOptions, model: bytes | None = None,
                 announce: bool = True) -> tuple[ort.InferenceSession, str]:
    """Open an ONNX model (the file at `path`, or `model`: that file changed in memory) with the
    best available requested provider; logs which one runs."""
    import onnxruntime as ort

    path = Path(path)
    check_model_file(path)
    providers, missing = _provider_list(options, ort.get_available_providers())
    so = ort.SessionOptions()
    threads = options.threads or min(os.cpu_count() or 1, 4)
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spin-waiting workers steal the cores that decode the cameras: measured on a loaded 2-core
    # box, spinning gave 35-180 ms per frame, sleeping 28-38 ms.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # ORT's own warnings (e.g. unused initialisers) are noise here
    try:
        try:
            session = ort.InferenceSession(model or str(path), sess_options=so, providers=providers)
        except Exception as exc:
            if providers == [CPU]:
                raise
            # a GPU provider that fails to start (driver, TensorRT engine build, memory) must not
            # leave the site without detection: the CPU is slower but always there
            log.error("detector %s: %s failed to start (%s); falling back to the CPU", path.name,
                      _ort_name(providers[0]), _first_line(exc))
            session = ort.InferenceSession(model or str(path), sess_options=so, providers=[CPU])
    except Exception as exc:  # ORT raises its own pybind types for bad protobufs, graphs, ops
        raise ModelError(f"model file {path} cannot be loaded ({_first_line(exc)}); it may be truncated or "
                         f"not an ONNX model; {FIX_HINT}") from exc
    running = session.get_providers()[0]
    note = f" (requested {', '.join(missing)} not available in this onnxruntime)" if missing else ""
    if announce:
        log.info("detector %s runs on %s with %d threads%s", path.name, running, threads, note)
    return session, running


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _ort_name(provider: Any) -> str:
    return provider[0] if isinstance(provider, tuple) else str(provider)


def uses_gpu(provider: str) -> bool:
    """Whether an execution provider name is a GPU one (CUDA, TensorRT)."""
    return provider in (_ORT_NAMES["cuda"], _ORT_NAMES["tensorrt"])


def to_detections(
    xyxy_input_space: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    scale: float,
    pad: tuple[float, float],
    image_shape: tuple[int, ...],
    names: Sequence[str],
) -> Detections:
    """Undo the letterbox, clip to the image, drop boxes with no area left, name the classes."""
    if len(xyxy_input_space) == 0:
        return Detections.empty()
    h, w = image_shape[:2]
    xyxy = np.asarray(xyxy_input_space, dtype=np.float32).reshape(-1, 4).copy()
    xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - pad[0]) / scale
    xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - pad[1]) / scale
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
    ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    class_ids = np.asarray(class_ids, dtype=np.int32)[ok]
    label = np.array(
        [names[c] if 0 <= c < len(names) else str(c) for c in class_ids], dtype=object
    ).reshape(-1)
    return Detections(
        xyxy=xyxy[ok], confidence=np.asarray(scores)[ok], class_id=class_ids,
        data={"class_name": label},
    )


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA frames (some cameras, PNG snapshots) become the BGR the models expect."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 image, got shape {image.shape} dtype {image.dtype}")
    return image


class OnnxDetector:
    """letterbox → session.run (batched when the batch dim is dynamic) → decode → NMS → Detections.

    Subclasses implement `decode` and may override `preprocess`, `names_from_metadata` and set
    `apply_nms = False` when the graph already suppresses duplicates.
    """

    apply_nms: bool = True
    max_run_batch: int = 16  # cap per session.run so a burst cannot blow up memory

    def __init__(self, path: Path, options: DetectorOptions, entry: dict | None = None) -> None:
        self.path = Path(path)
        self.options = options
        self.entry = dict(entry or {})
        self.session, self.provider = make_session(self.path, options)
        self.rect_multiple = 0  # > 0: full frames take rect_size inputs (see _enable_rect)
        self._model: bytes | None = None  # the model as the session runs it, when changed in memory
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_names = [o.name for o in self.session.get_outputs()]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(f"model file {self.path}: expected a 4-D image input, got {shape}")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self.input_size = self._input_size(shape)  # (w, h)
        names = self.entry.get("names") or self.names_from_metadata()
        self.names: list[str] = [str(n) for n in names]

    def _input_size(self, shape: list[Any]) -> tuple[int, int]:
        """The graph's own (w, h) when static, else the manifest's `input_size`."""
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return int(w), int(h)
        size = self.entry.get("input_size")
        if not size:
            raise ModelError(f"model file {self.path} has a dynamic input size; name it in models.yaml")
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def names_from_metadata(self) -> list[str]:
        """Class names when no manifest entry names them: our converters store them in the file."""
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            return list(json.loads(meta["edge_agent.names"]))
        except (KeyError, ValueError) as err:
            raise ModelError(f"model file {self.path} carries no class names (edge_agent.names)") from err

    def preprocess(self, padded_bgr: np.ndarray) -> np.ndarray:
        """One letterboxed BGR image → (3, H, W) float32 input; default RGB scaled to 0..1."""
        rgb = padded_bgr[:, :, ::-1]
        return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) * (1.0 / 255.0)

    def decode(self, outputs: list[np.ndarray], size: tuple[int, int]) -> list[Candidates]:
        """Raw outputs of one batch whose input was `size` (w, h) → per image (xyxy in input
        pixels, scores, class ids)."""
        raise NotImplementedError

    def _enable_rect(self, multiple: int) -> None:
        """For backends whose decode follows the input's size, called at the end of their set-up
        with the model's largest stride: free the input's height and width where the options,
        the provider and the graph allow (rect.py); otherwise everything stays square."""
        if self.fixed_batch or not uses_rect(self.options.rect, self.provider):
            return
        model = free_input_shape(self.path)
        if model is None:
            return
        session, provider = make_session(self.path, self.options, model, announce=False)

        def run(batch: np.ndarray) -> None:
            self.decode(session.run(self.output_names, {self.input_name: batch}), (batch.shape[3], batch.shape[2]))

        if probe(run, self.input_size, multiple):
            self.session, self.provider, self._model, self.rect_multiple = session, provider, model, multiple

    def input_for(self, image_shape: tuple[int, ...]) -> tuple[int, int]:
        """The (w, h) a picture of `image_shape` is letterboxed into."""
        if not self.rect_multiple:
            return self.input_size
        return rect_size(image_shape, self.input_size, self.rect_multiple)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in BGR uint8 images of any sizes; one `Detections` per image, in its pixels.
        Pictures are run in batches of one input size (a tile's square beside a frame's rect)."""
        if not images:
            return []
        images = [_as_bgr(img) for img in images]
        sizes = [self.input_for(img.shape) for img in images]
        boxes = [letterbox(img, size) for img, size in zip(images, sizes)]
        tensors = [self.preprocess(b[0]) for b in boxes]
        candidates: list[Candidates | None] = [None] * len(images)
        step = self.fixed_batch or self.max_run_batch
        for size in dict.fromkeys(sizes):
            same = [i for i, s in enumerate(sizes) if s == size]
            for start in range(0, len(same), step):
                part = same[start : start + step]
                chunk = [tensors[i] for i in part]
                if self.fixed_batch and len(part) < self.fixed_batch:  # fixed batch > n: pad with blanks
                    chunk = chunk + [np.zeros_like(chunk[0])] * (self.fixed_batch - len(part))
                for i, cand in zip(part, self.decode(self._run(np.stack(chunk)), size)):
                    candidates[i] = cand
        return [self._finish(c, b, img) for c, b, img in zip(candidates, boxes, images)]  # type: ignore[arg-type]

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        """One session run; a GPU provider that fails while running (device lost, out of memory)
        is replaced by the CPU for good, and the batch is run again there. Health shows the
        provider (`detector.provider`, `gpu_fallback`)."""
        try:
            return self.session.run(self.output_names, {self.input_name: batch})
        except Exception as exc:
            if not uses_gpu(self.provider):
                raise
            log.error("detector %s: %s failed while running (%s); falling back to the CPU", self.path.name,
                      self.provider, _first_line(exc))
            self.session, self.provider = make_session(self.path, replace(self.options, providers=["cpu"]),
                                                       self._model)
            return self.session.run(self.output_names, {self.input_name: batch})

    def _finish(self, cand: Candidates, box: tuple, image: np.ndarray) -> Detections:
        xyxy, scores, class_ids = cand
        ok = scores >= self.options.min_score
        xyxy, scores, class_ids = xyxy[ok], scores[ok], class_ids[ok]
        if self.apply_nms and len(scores):
            keep = nms(xyxy, scores, class_ids, self.options.iou)
            xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
        _, scale, pad = box
        return to_detections(xyxy, scores, class_ids, scale, pad, image.shape, self.names)
