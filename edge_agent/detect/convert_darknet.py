"""Darknet `.cfg` + `.weights` → ONNX, with numpy and onnx only (no torch, no OpenCV DNN).

Supported layers: convolutional (batch norm folded into the conv), maxpool (including the
size-2 stride-1 one YOLOv3-tiny uses), route, shortcut, upsample and yolo. The yolo decode
(sigmoid, grid, anchors) is built into the graph, so the model has two outputs:
`boxes` (N, A, 4) x1 y1 x2 y2 in input pixels and `scores` (N, A, C) = objectness x class
probability. The batch dimension is dynamic. Class names and the format go into the model's
metadata (`edge_agent.format`, `edge_agent.names`) so a bare file can be identified later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import ModelError

OPSET = 17


@dataclass
class Section:
    kind: str
    line: int
    opts: dict[str, str] = field(default_factory=dict)

    def int(self, key: str, default: int | None = None) -> int:
        if key not in self.opts:
            if default is None:
                raise ModelError(f"darknet cfg line {self.line}: [{self.kind}] needs {key}=")
            return default
        return int(self.opts[key])

    def ints(self, key: str) -> list[int]:
        return [int(v) for v in self.opts[key].split(",") if v.strip()]


def parse_cfg(path: Path) -> list[Section]:
    """Parse the INI-like cfg into sections (the first is [net])."""
    sections: list[Section] = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append(Section(line.strip("[]").strip(), n))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].opts[key.strip()] = value.strip()
        else:
            raise ModelError(f"{path}:{n}: cannot parse {raw!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ModelError(f"{path}: a Darknet cfg starts with [net]")
    return sections


class _Weights:
    """Sequential reader of the float32 arrays after the header."""

    def __init__(self, path: Path) -> None:
        raw = Path(path).read_bytes()
        if len(raw) < 20:
            raise ModelError(f"{path}: too short for a Darknet weights file")
        major, minor, _ = np.frombuffer(raw[:12], dtype=np.int32)
        offset = 20 if major * 10 + minor >= 2 else 16  # `seen` became int64 in 0.2
        self.path = path
        self.data = np.frombuffer(raw[offset:], dtype=np.float32)
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        if self.pos + n > len(self.data):
            raise ModelError(f"{self.path} ends early (truncated download?)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


class _Graph:
    """Accumulates nodes and initialisers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, **attrs) -> str:
        out = self.name(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _conv(g: _Graph, x: str, c_in: int, s: Section, w: _Weights) -> tuple[str, int]:
    filters, size = s.int("filters"), s.int("size")
    stride, pad = s.int("stride", 1), s.int("pad", 0)
    padding = size // 2 if pad else s.int("padding", 0)
    if s.int("groups", 1) != 1:
        raise ModelError(f"darknet cfg line {s.line}: grouped convolutions are not supported")
    bias = w.take(filters).copy()
    if s.int("batch_normalize", 0):
        gamma, mean, var = w.take(filters), w.take(filters), w.take(filters)
        kernel = w.take(filters * c_in * size * size).reshape(filters, c_in, size, size)
        k = gamma / (np.sqrt(var) + 1e-6)  # darknet's normalize: (x - mean) / (sqrt(var) + 1e-6)
        kernel = kernel * k[:, None, None, None]
        bias = bias - mean * k
    else:
        kernel = w.take(filters * c_in * size * size).reshape(filters, c_in, size, size)
    y = g.op(
        "Conv", [x, g.const(kernel.astype(np.float32), "w"), g.const(bias.astype(np.float32), "b")],
        "conv", kernel_shape=[size, size], strides=[stride, stride], pads=[padding] * 4,
    )
    act = s.opts.get("activation", "linear")
    if act == "leaky":
        y = g.op("LeakyRelu", [y], "leaky", alpha=0.1)
    elif act == "relu":
        y = g.op("Relu", [y])
    elif act == "logistic":
        y = g.op("Sigmoid", [y])
    elif act != "linear":
        raise ModelError(f"darknet cfg line {s.line}: activation {act!r} is not supported")
    return y, filters


def _maxpool(g: _Graph, x: str, s: Section) -> str:
    size = s.int("size", s.int("stride", 1))
    stride = s.int("stride", 1)
    padding = s.int("padding", size - 1)
    begin = padding // 2  # darknet offsets by -padding/2 and pads the rest at the end
    end = padding - begin
    return g.op("MaxPool", [x], "pool", kernel_shape=[size, size], strides=[stride, stride],
                pads=[begin, begin, end, end])


def _yolo(g: _Graph, x: str, s: Section, hw: tuple[int, int], inp: tuple[int, int],
          mask: list[int]) -> tuple[str, str]:
    """One yolo head → (boxes (N, A, 4) xyxy in input pixels, scores (N, A, C))."""
    nc = s.int("classes")
    anchors = np.array(s.ints("anchors"), dtype=np.float32).reshape(-1, 2)[mask]  # (na, 2) w h
    na, (h, w), (in_w, in_h) = len(mask), hw, inp
    # (N, na*(5+nc), H, W) → (N, na, 5+nc, H, W) → (N, na, H, W, 5+nc) → (N, na*H*W, 5+nc)
    t = g.op("Reshape", [x, g.const(np.array([0, na, 5 + nc, h, w], np.int64))])
    t = g.op("Transpose", [t], perm=[0, 1, 3, 4, 2])
    t = g.op("Reshape", [t, g.const(np.array([0, na * h * w, 5 + nc], np.int64))])
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    grid = np.broadcast_to(np.stack([gx, gy], -1)[None], (na, h, w, 2)).reshape(1, -1, 2)
    anchor = np.broadcast_to(anchors[:, None, None, :], (na, h, w, 2)).reshape(1, -1, 2)
    stride = np.array([in_w / w, in_h / h], np.float32)

    def part(lo: int, hi: int) -> str:
        return g.op("Slice", [t, g.const(np.array([lo], np.int64)), g.const(np.array([hi], np.int64)),
                              g.const(np.array([2], np.int64))])

    xy = g.op("Mul", [g.op("Add", [g.op("Sigmoid", [part(0, 2)]), g.const(grid.copy(), "grid")]),
                      g.const(stride, "stride")])
    wh = g.op("Mul", [g.op("Exp", [part(2, 4)]), g.const(anchor.copy(), "anchor")])
    half = g.op("Mul", [wh, g.const(np.array(0.5, np.float32))])
    boxes = g.op("Concat", [g.op("Sub", [xy, half]), g.op("Add", [xy, half])], axis=2)
    scores = g.op("Mul", [g.op("Sigmoid", [part(4, 5)]), g.op("Sigmoid", [part(5, 5 + nc)])])
    return boxes, scores


def _walk(g: _Graph, layers: list[Section], w: _Weights, channels: int, inp: tuple[int, int],
          masks: list[list[int]] | None, cfg_path: Path) -> list[tuple[str, str]]:
    """Add every layer to the graph; returns the yolo heads' (boxes, scores) tensors."""
    outs: list[tuple[str, int, int, int]] = []  # per layer: (tensor, channels, h, w)
    x, ch, (wd, h) = "images", channels, inp
    heads: list[tuple[str, str]] = []
    for s in layers:
        if s.kind == "convolutional":
            x, ch = _conv(g, x, ch, s, w)
            st, k = s.int("stride", 1), s.int("size")
            p = k // 2 if s.int("pad", 0) else s.int("padding", 0)
            h, wd = (h + 2 * p - k) // st + 1, (wd + 2 * p - k) // st + 1
        elif s.kind == "maxpool":
            k, st = s.int("size", s.int("stride", 1)), s.int("stride", 1)
            pad = s.int("padding", k - 1)
            x = _maxpool(g, x, s)
            h, wd = (h + pad - k) // st + 1, (wd + pad - k) // st + 1
        elif s.kind == "upsample":
            st = s.int("stride", 2)
            x = g.op("Resize", [x, "", g.const(np.array([1, 1, st, st], np.float32))], "up", mode="nearest")
            h, wd = h * st, wd * st
        elif s.kind == "route":
            idx = [i if i >= 0 else len(outs) + i for i in s.ints("layers")]
            parts = [outs[i] for i in idx]
            x = parts[0][0] if len(parts) == 1 else g.op("Concat", [p[0] for p in parts], axis=1)
            ch, h, wd = sum(p[1] for p in parts), parts[0][2], parts[0][3]
        elif s.kind == "shortcut":
            src = s.int("from")
            x = g.op("Add", [x, outs[src if src >= 0 else len(outs) + src][0]])
        elif s.kind == "yolo":
            if masks is not None and len(heads) >= len(masks):
                raise ModelError(f"{len(masks)} anchor masks given but {cfg_path} has more yolo layers")
            mask = s.ints("mask") if masks is None else list(masks[len(heads)])
            heads.append(_yolo(g, x, s, (h, wd), inp, mask))
        else:
            raise ModelError(f"{cfg_path}:{s.line}: layer [{s.kind}] is not supported")
        outs.append((x, ch, h, wd))
    if masks is not None and len(masks) != len(heads):
        raise ModelError(f"{len(masks)} anchor masks given for {len(heads)} yolo layers")
    return heads


def convert(cfg_path: Path, weights_path: Path, out_path: Path, names: list[str],
            masks: list[list[int]] | None = None, input_size: tuple[int, int] | None = None) -> Path:
    """Convert a Darknet model to ONNX at `out_path`.

    `masks` overrides each yolo layer's `mask=` in order (some shipped cfgs carry wrong ones);
    `input_size` (w, h), multiples of 32, overrides the cfg's (the network is fully convolutional).
    """
    sections = parse_cfg(cfg_path)
    net, layers = sections[0], sections[1:]
    in_w, in_h, c = net.int("width"), net.int("height"), net.int("channels", 3)
    if input_size:
        in_w, in_h = int(input_size[0]), int(input_size[1])
        if in_w % 32 or in_h % 32:
            raise ModelError(f"input size {in_w}x{in_h}: width and height must be multiples of 32")
    classes = {s.int("classes") for s in layers if s.kind == "yolo"}
    if classes != {len(names)}:
        raise ModelError(f"{cfg_path} has {sorted(classes)} classes but {len(names)} names are given")
    w = _Weights(weights_path)
    g = _Graph()
    heads = _walk(g, layers, w, c, (in_w, in_h), masks, Path(cfg_path))
    if w.pos != len(w.data):
        raise ModelError(f"{weights_path} has {len(w.data) - w.pos} values more than {cfg_path} uses; "
                         "the two files do not belong together")
    g.nodes.append(helper.make_node("Concat", [b for b, _ in heads], ["boxes"], axis=1))
    g.nodes.append(helper.make_node("Concat", [s for _, s in heads], ["scores"], axis=1))
    graph = helper.make_graph(
        g.nodes, "darknet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", c, in_h, in_w])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", "anchors", 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "anchors", len(names)])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edge-agent convert_darknet")
    model.ir_version = 8  # readable by onnxruntime >= 1.14 (pyproject allows >= 1.17)
    helper.set_model_props(model, {"edge_agent.format": "darknet", "edge_agent.names": json.dumps(names),
                                   "edge_agent.input_size": json.dumps([in_w, in_h])})
    onnx.checker.check_model(model)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".part.onnx")  # still matched by .gitignore
    onnx.save(model, str(tmp))
    tmp.replace(out_path)  # never leave a half-written model where the agent looks for it
    return out_path


def convert_entry(sources: dict[str, Path], out_path: Path, entry: dict) -> None:
    """Registry hook: sources `cfg` and `weights`, names and anchor masks from the manifest entry."""
    for key in ("cfg", "weights"):
        if key not in sources:
            raise ModelError(f"darknet model needs source file `{key}` in models.yaml")
    options = entry.get("convert") or {}
    convert(sources["cfg"], sources["weights"], out_path, [str(n) for n in entry["names"]],
            masks=options.get("anchor_masks"), input_size=entry.get("input_size"))
