"""TF op → ONNX node mapping for the TFJS converter: the ONNX graph builder and one emitter per op.

TF's NHWC convolutions, pools and resizes become their NCHW ONNX forms wrapped in Transposes
(`tfjs_graph.cancel_transposes` later removes the back-to-back ones). Ops whose inputs are all
constants can be evaluated here in numpy (`fold_constants`). Any op not handled is a clear ModelError.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ..errors import ModelError

OPSET = 17
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def tf_attr(node: dict, key: str, default: Any = None) -> Any:
    """A TF attr value in plain Python: ints, floats, strings, bools, int lists, dtypes."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        return []
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    if "shape" in a:
        return a["shape"]
    return default


class Builder:
    """Collects ONNX nodes and initialisers; maps TF tensor refs to ONNX names or constants."""

    def __init__(self, consts: dict[str, np.ndarray]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.consts = consts  # TF ref → value (folded or from the manifest)
        self.alias: dict[str, str] = {}  # TF ref → ONNX tensor name
        self.inputs: list[onnx.ValueInfoProto] = []
        self._n = 0

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"{stem}__{self._n}"

    def const(self, value: np.ndarray, stem: str = "c") -> str:
        name = self.fresh(stem)
        self.inits[name] = np.asarray(value)
        return name

    def tensor(self, ref: str) -> str:
        """ONNX name for a TF ref; constants become initialisers on first use."""
        ref = ref[:-2] if ref.endswith(":0") else ref
        if ref in self.alias:
            return self.alias[ref]
        if ref in self.consts:
            value = self.consts[ref]
            if value.dtype == np.float64:
                value = value.astype(np.float32)
            self.alias[ref] = self.const(value, ref.replace("/", "_"))
            return self.alias[ref]
        raise ModelError(f"TFJS graph: tensor {ref!r} is used before it is produced")

    def op(self, op_type: str, inputs: list[str], stem: str, n_out: int = 1, **attrs) -> list[str]:
        outs = [self.fresh(stem) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def infer_shape(self, name: str, graph_input: onnx.ValueInfoProto) -> list[int]:
        """Static shape of an ONNX tensor built so far (for ops whose ONNX form needs it)."""
        graph = helper.make_graph(self.nodes, "probe", [graph_input], [], self._init_protos())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        inferred = shape_inference.infer_shapes(model).graph.value_info
        for vi in inferred:
            if vi.name == name:
                return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        raise ModelError(f"TFJS graph: cannot infer the shape of {name}")

    def _init_protos(self) -> list[onnx.TensorProto]:
        return [numpy_helper.from_array(v, k) for k, v in self.inits.items()]


def fold_constants(op: str, node: dict, vals: list[np.ndarray]) -> np.ndarray | None:
    """Evaluate an op on constant inputs in numpy (onnx-tf's shape arithmetic); None if not here."""
    if op in ("Identity", "StopGradient"):
        return vals[0]
    if op in ("Add", "AddV2"):
        return vals[0] + vals[1]
    if op == "Cast":
        return vals[0].astype(np.float32 if tf_attr(node, "DstT") == "DT_FLOAT" else np.int64)
    if op == "SparseToDense":
        idx, shape, values, default = vals
        out = np.full([int(v) for v in np.atleast_1d(shape)], default, dtype=default.dtype)
        if idx.size:
            out[tuple(np.asarray(idx).reshape(-1, out.ndim).T)] = values
        return out
    return None


def base_ref(name: str) -> str:
    """A TF tensor ref without its default ':0' output suffix."""
    return name[:-2] if name.endswith(":0") else name


def _spatial(values: list[int], nhwc: bool) -> list[int]:
    return values[1:3] if nhwc else values[2:4]


def _pads(node: dict, nhwc: bool) -> dict[str, Any]:
    """ONNX pads/auto_pad attributes for a TF conv or pool `padding` attr."""
    mode = tf_attr(node, "padding", "VALID")
    if mode == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if mode == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    if mode == "EXPLICIT":
        p = np.array(tf_attr(node, "explicit_paddings", [])).reshape(4, 2)
        hw = p[1:3] if nhwc else p[2:4]
        return {"pads": [int(hw[0, 0]), int(hw[1, 0]), int(hw[0, 1]), int(hw[1, 1])]}
    raise ModelError(f"TFJS graph: node {node['name']}: padding {mode} is not supported")


def emit_conv(b: Builder, node: dict, ins: list[str], bias: np.ndarray | None) -> list[str]:
    """Conv2D / DepthwiseConv2dNative and their TF-fused forms → ONNX Conv in NCHW.

    Filters are HWIO (depthwise: H, W, C, multiplier → a grouped Conv). `bias` comes from a
    folded Add; a fused op carries its own (`fused_ops` BiasAdd, then an optional activation).
    """
    w = b.consts.get(base_ref(ins[1]))
    if w is None:
        raise ModelError(f"TFJS graph: node {node['name']}: the filter must be a constant")
    nhwc = tf_attr(node, "data_format", "NHWC") == "NHWC"
    fused = tf_attr(node, "fused_ops", []) if node["op"].startswith(("_Fused", "Fused")) else []
    if fused:
        if fused[0] != "BiasAdd" or len(fused) > 2 or len(ins) < 3:
            raise ModelError(f"TFJS graph: node {node['name']}: fused ops {fused} are not supported")
        bias = b.consts.get(base_ref(ins[2]))
        if bias is None:
            raise ModelError(f"TFJS graph: node {node['name']}: the fused bias must be a constant")
    attrs = _pads(node, nhwc)
    attrs.update(strides=_spatial(tf_attr(node, "strides", [1, 1, 1, 1]), nhwc),
                 dilations=_spatial(tf_attr(node, "dilations", [1, 1, 1, 1]), nhwc),
                 kernel_shape=list(w.shape[:2]))
    if "Depthwise" in node["op"]:
        kh, kw, cin, mult = w.shape
        weight = w.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
        attrs["group"] = int(cin)
    else:
        weight = w.transpose(3, 2, 0, 1)
    x = b.tensor(ins[0])
    if nhwc:
        x = b.op("Transpose", [x], "to_nchw", perm=_TO_NCHW)[0]
    conv_in = [x, b.const(weight.astype(np.float32), "w")]
    if bias is not None:
        conv_in.append(b.const(np.asarray(bias, np.float32).reshape(-1), "b"))
    y = b.op("Conv", conv_in, "conv", **attrs)[0]
    if len(fused) == 2:
        y = _activation(b, fused[1], y, node)
    return b.op("Transpose", [y], "to_nhwc", perm=_TO_NHWC) if nhwc else [y]


def _activation(b: Builder, kind: str, x: str, node: dict) -> str:
    if kind == "Relu":
        return b.op("Relu", [x], "relu")[0]
    if kind == "Relu6":
        return b.op("Clip", [x, b.const(np.float32(0)), b.const(np.float32(6))], "relu6")[0]
    raise ModelError(f"TFJS graph: node {node['name']}: fused activation {kind} is not supported")


def _mean(b: Builder, node: dict, ins: list[str]) -> list[str]:
    """Mean over constant axes (MobileNetV3's squeeze-excite global pooling)."""
    axes = [int(v) for v in np.atleast_1d(b.consts[base_ref(ins[1])])]
    keep = int(bool(tf_attr(node, "keep_dims", False)))
    return b.op("ReduceMean", [b.tensor(ins[0])], "mean", axes=axes, keepdims=keep)


def _pool(b: Builder, node: dict, ins: list[str]) -> list[str]:
    nhwc = tf_attr(node, "data_format", "NHWC") == "NHWC"
    x = b.tensor(ins[0])
    if nhwc:
        x = b.op("Transpose", [x], "to_nchw", perm=_TO_NCHW)[0]
    attrs = _pads(node, nhwc)
    attrs.update(kernel_shape=_spatial(tf_attr(node, "ksize"), nhwc), strides=_spatial(tf_attr(node, "strides"), nhwc))
    kind = "MaxPool" if node["op"] == "MaxPool" else "AveragePool"
    y = b.op(kind, [x], "pool", **attrs)[0]
    return b.op("Transpose", [y], "to_nhwc", perm=_TO_NHWC) if nhwc else [y]


def _resize(b: Builder, node: dict, ins: list[str]) -> list[str]:
    """ResizeBilinear (NHWC, constant (h, w)) → ONNX Resize in NCHW, scales from static shapes."""
    size = b.consts.get(base_ref(ins[1]))
    if size is None:
        raise ModelError(f"TFJS graph: node {node['name']}: the output size must be a constant")
    x = b.op("Transpose", [b.tensor(ins[0])], "to_nchw", perm=_TO_NCHW)[0]
    _, _, h, w = b.infer_shape(x, b.inputs[0])
    if h <= 0 or w <= 0:
        raise ModelError(f"TFJS graph: node {node['name']}: input height/width must be static")
    scales = np.array([1, 1, size[0] / h, size[1] / w], np.float32)
    if tf_attr(node, "align_corners", False):
        coord = "align_corners"
    else:
        coord = "half_pixel" if tf_attr(node, "half_pixel_centers", False) else "asymmetric"
    y = b.op("Resize", [x, "", b.const(scales, "scales")], "resize", mode="linear",
             coordinate_transformation_mode=coord)[0]
    return b.op("Transpose", [y], "to_nhwc", perm=_TO_NHWC)


def _split(b: Builder, node: dict, ins: list[str]) -> list[str]:
    """SplitV (value, sizes, axis); a -1 size takes what the others leave."""
    n = int(tf_attr(node, "num_split"))
    x = b.tensor(ins[0])
    sizes = np.asarray(b.consts[base_ref(ins[1])], np.int64).copy()
    axis = int(b.consts[base_ref(ins[2])])
    if (sizes < 0).any():
        total = b.infer_shape(x, b.inputs[0])[axis]
        sizes[sizes < 0] = total - sizes[sizes >= 0].sum()
    return b.op("Split", [x, b.const(sizes, "sizes")], "split", n_out=n, axis=axis)


def _pad(b: Builder, node: dict, ins: list[str]) -> list[str]:
    p = np.asarray(b.consts[base_ref(ins[1])], np.int64)
    inputs = [b.tensor(ins[0]), b.const(np.concatenate([p[:, 0], p[:, 1]]), "pads")]
    if node["op"] == "PadV2":
        inputs.append(b.const(np.asarray(b.consts[base_ref(ins[2])], np.float32).reshape(()), "pad_value"))
    return b.op("Pad", inputs, "pad", mode="constant")


def _reshape(b: Builder, node: dict, ins: list[str]) -> list[str]:
    shape = np.asarray(b.consts[base_ref(ins[1])], np.int64).copy()
    if len(shape) > 1 and shape[0] == 1:
        shape[0] = 0  # copy the batch dimension so the model runs on batches
    return b.op("Reshape", [b.tensor(ins[0]), b.const(shape, "shape")], "reshape")


_BINARY = {"Add": "Add", "AddV2": "Add", "BiasAdd": "Add", "Sub": "Sub", "Mul": "Mul",
           "RealDiv": "Div", "Maximum": "Max", "Minimum": "Min"}
_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}


def _simple(b: Builder, node: dict, ins: list[str]) -> list[str]:
    op = node["op"]
    if op in _BINARY:
        return b.op(_BINARY[op], [b.tensor(ins[0]), b.tensor(ins[1])], op.lower())
    if op in _UNARY:
        return b.op(_UNARY[op], [b.tensor(ins[0])], op.lower())
    if op == "LeakyRelu":
        return b.op("LeakyRelu", [b.tensor(ins[0])], "leaky", alpha=float(tf_attr(node, "alpha", 0.2)))
    if op == "Relu6":
        return b.op("Clip", [b.tensor(ins[0]), b.const(np.float32(0)), b.const(np.float32(6))], "relu6")
    if op == "ConcatV2":
        axis = int(b.consts[base_ref(ins[-1])])
        return b.op("Concat", [b.tensor(r) for r in ins[:-1]], "concat", axis=axis)
    if op == "Transpose":
        perm = [int(v) for v in b.consts[base_ref(ins[1])]]
        return b.op("Transpose", [b.tensor(ins[0])], "transpose", perm=perm)
    raise ModelError(f"TFJS graph: op {op} (node {node['name']}) is not supported")


_HANDLERS: dict[str, Callable[[Builder, dict, list[str]], list[str]]] = {
    "MaxPool": _pool, "AvgPool": _pool, "ResizeBilinear": _resize, "SplitV": _split,
    "Pad": _pad, "PadV2": _pad, "Reshape": _reshape, "Mean": _mean,
}


def emit_op(b: Builder, node: dict, ins: list[str]) -> list[str]:
    """ONNX outputs for any non-convolution TF node (those go through `emit_conv` for bias folding)."""
    return _HANDLERS.get(node["op"], _simple)(b, node, ins)
