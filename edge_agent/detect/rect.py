"""Rectangular input: a 16:9 camera picture letterboxed into a square model input is 44 % grey
padding, and a fully convolutional detector spends as much on the padding as on the picture.
Where the graph allows it (its reshapes and resizes follow the input, as NanoDet's do) the input's
height and width are freed and each picture is letterboxed into the smallest multiple of the
model's largest stride that holds it at the same scale with a margin: 416x288 instead of 416x416
for 1280x720, 0.7x the work for the same pixels of picture. Ultralytics validates the same way (`rect=True`).

TensorRT builds one engine per input shape, so it keeps the square (`uses_rect`)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def uses_rect(wanted: bool, provider: str) -> bool:
    """Whether to free the input shape: asked for, and not on TensorRT (an engine per shape)."""
    return wanted and provider != "TensorrtExecutionProvider"


def free_input_shape(path: Path) -> bytes | None:
    """The ONNX model at `path` with its NCHW input's height and width made symbolic (and the
    shapes inferred from the old size dropped), as bytes for an InferenceSession; None when the
    input is not a static 4-D image (nothing to free, or a layout this does not know)."""
    import onnx

    model = onnx.load(str(path))
    if len(model.graph.input) != 1:
        return None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or dims[1].dim_value != 3 or not (dims[2].dim_value and dims[3].dim_value):
        return None
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    del model.graph.value_info[:]  # inferred at the square size; ORT infers them again
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    return model.SerializeToString()


def rect_size(image_shape: tuple[int, ...], square: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(w, h) of the input a picture of `image_shape` is letterboxed into: the picture at the
    square's scale with at least half a `multiple` of grey on each side, each side rounded up to
    `multiple` and never past the square's. The margin is there because objects at a picture's
    edge lose score when the grey beyond it is thin: a boat touching the bottom of a 16:9 lake
    composite scored 0.40 with 11 px of grey (416x256), 0.53 with 27 px (416x288), 0.48 on the
    square; on the 480x360 composites, 4 px of grey lost 3 of 126 people and 1 of 36 boats that
    the square finds at 0.25, 20 px 2 people and no boat (scripts/bench_detector.py --square-too)."""
    w, h = square
    ih, iw = image_shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)) + multiple, max(1, round(ih * scale)) + multiple
    return min(w, math.ceil(nw / multiple) * multiple), min(h, math.ceil(nh / multiple) * multiple)


def probe(run, square: tuple[int, int], multiple: int) -> bool:
    """Whether a session runs an input one `multiple` shorter and narrower than its square:
    a graph with a reshape or resize fixed to the square size fails here, once, at start."""
    w, h = square
    if w <= multiple or h <= multiple:
        return False
    try:
        run(np.zeros((1, 3, h - multiple, w - multiple), np.float32))
    except Exception as exc:  # ORT's own pybind errors: a shape the graph cannot take
        log.info("the detector's graph takes only its %dx%d input (%s): full frames are letterboxed "
                 "into the square", w, h, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        return False
    return True
