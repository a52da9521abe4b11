"""TensorFlow.js graph model (`model.json` + `.bin` shards) → ONNX, with numpy and onnx only.

Reads the graph nodes and the weights manifest (float32, int32 and the float16 / uint8 / uint16
quantised forms), folds nodes whose inputs are all constants (e.g. the SparseToDense shape
arithmetic onnx-tf leaves behind) and maps the rest to ONNX. TF's NHWC convolutions become
NCHW Conv wrapped in Transposes; a peephole pass then cancels back-to-back Transposes, so a
graph that came from ONNX (onnx-tf) ends up almost free of them. A bias Add right after a
Conv2D is folded into the Conv. The batch dimension is made dynamic (Reshape targets that
start with the batch size 1 copy the batch instead).

Supported ops (those of onnx-tf exports such as NanoDet's; any other op is a clear ModelError):
Placeholder, Const, Identity, Conv2D, Add, AddV2, BiasAdd, Sub, Mul, RealDiv, Relu, Relu6,
LeakyRelu, Sigmoid, Tanh, MaxPool, AvgPool, Pad, PadV2, ConcatV2, Transpose, Reshape, SplitV,
ResizeBilinear, and Cast / SparseToDense on constants (folded).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from ..errors import ModelError

OPSET = 17
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "int64": np.int64}


def read_weights(model_json: Path, shards: list[Path] | None = None
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse model.json and its weight shards; returns (the json, name → float32/int array).

    Shards are the manifest's paths next to the json unless `shards` names them (in order).
    """
    model_json = Path(model_json)
    try:
        spec = json.loads(model_json.read_text())
        groups = spec["weightsManifest"]
        spec["modelTopology"]["node"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{model_json}: not a TensorFlow.js graph model ({exc})") from None
    weights: dict[str, np.ndarray] = {}
    files = [model_json.parent / p for g in groups for p in g["paths"]]
    if shards is not None:
        if len(shards) != len(files):
            raise ModelError(f"{model_json}: its manifest names {len(files)} weight files, got {len(shards)}")
        files = [Path(p) for p in shards]
    for group in groups:
        try:
            data = b"".join(files.pop(0).read_bytes() for _ in group["paths"])
        except OSError as exc:
            raise ModelError(f"{model_json}: weight file cannot be read: {exc}") from None
        pos = 0
        for w in group["weights"]:
            arr, pos = _take(w, data, pos, model_json)
            weights[w["name"]] = arr
        if pos != len(data):
            raise ModelError(f"{model_json}: shards {group['paths']} hold {len(data) - pos} bytes "
                             "more than the manifest describes; the files do not belong together")
    return spec, weights


def _take(w: dict, data: bytes, pos: int, src: Path) -> tuple[np.ndarray, int]:
    """Decode one manifest entry at byte `pos`; returns the array and the next position."""
    shape = [int(d) for d in w["shape"]]
    n = int(np.prod(shape)) if shape else 1
    quant = w.get("quantization")
    stored = np.dtype(quant["dtype"] if quant else w["dtype"])
    if w["dtype"] not in _DTYPES:
        raise ModelError(f"{src}: weight {w['name']} has unsupported dtype {w['dtype']}")
    end = pos + n * stored.itemsize
    if end > len(data):
        raise ModelError(f"{src}: weight shards end early at {w['name']} (truncated download?)")
    raw = np.frombuffer(data[pos:end], dtype=stored.newbyteorder("<"))
    if quant and quant["dtype"] in ("uint8", "uint16"):  # affine: q * scale + min
        raw = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
    return raw.astype(_DTYPES[w["dtype"]]).reshape(shape), end


def _attr(node: dict, key: str, default: Any = None) -> Any:
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


class _Builder:
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


def _fold(op: str, node: dict, vals: list[np.ndarray]) -> np.ndarray | None:
    """Evaluate an op on constant inputs in numpy (onnx-tf's shape arithmetic); None if not here."""
    if op in ("Identity", "StopGradient"):
        return vals[0]
    if op in ("Add", "AddV2"):
        return vals[0] + vals[1]
    if op == "Cast":
        return vals[0].astype(np.float32 if _attr(node, "DstT") == "DT_FLOAT" else np.int64)
    if op == "SparseToDense":
        idx, shape, values, default = vals
        out = np.full([int(v) for v in np.atleast_1d(shape)], default, dtype=default.dtype)
        if idx.size:
            out[tuple(np.asarray(idx).reshape(-1, out.ndim).T)] = values
        return out
    return None


def _ref(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _spatial(values: list[int], nhwc: bool) -> list[int]:
    return values[1:3] if nhwc else values[2:4]


def _pads(node: dict, nhwc: bool) -> dict[str, Any]:
    """ONNX pads/auto_pad attributes for a TF conv or pool `padding` attr."""
    mode = _attr(node, "padding", "VALID")
    if mode == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if mode == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    if mode == "EXPLICIT":
        p = np.array(_attr(node, "explicit_paddings", [])).reshape(4, 2)
        hw = p[1:3] if nhwc else p[2:4]
        return {"pads": [int(hw[0, 0]), int(hw[1, 0]), int(hw[0, 1]), int(hw[1, 1])]}
    raise ModelError(f"TFJS graph: node {node['name']}: padding {mode} is not supported")


def _conv(b: _Builder, node: dict, ins: list[str], bias: np.ndarray | None) -> list[str]:
    """Conv2D (filter HWIO) → ONNX Conv (OIHW); `bias` comes from a folded Add."""
    w = b.consts.get(_ref(ins[1]))
    if w is None:
        raise ModelError(f"TFJS graph: node {node['name']}: the filter must be a constant")
    nhwc = _attr(node, "data_format", "NHWC") == "NHWC"
    attrs = _pads(node, nhwc)
    attrs.update(strides=_spatial(_attr(node, "strides", [1, 1, 1, 1]), nhwc),
                 dilations=_spatial(_attr(node, "dilations", [1, 1, 1, 1]), nhwc),
                 kernel_shape=list(w.shape[:2]))
    x = b.tensor(ins[0])
    if nhwc:
        x = b.op("Transpose", [x], "to_nchw", perm=_TO_NCHW)[0]
    conv_in = [x, b.const(w.transpose(3, 2, 0, 1).astype(np.float32), "w")]
    if bias is not None:
        conv_in.append(b.const(np.asarray(bias, np.float32).reshape(-1), "b"))
    y = b.op("Conv", conv_in, "conv", **attrs)[0]
    return b.op("Transpose", [y], "to_nhwc", perm=_TO_NHWC) if nhwc else [y]


def _pool(b: _Builder, node: dict, ins: list[str]) -> list[str]:
    nhwc = _attr(node, "data_format", "NHWC") == "NHWC"
    x = b.tensor(ins[0])
    if nhwc:
        x = b.op("Transpose", [x], "to_nchw", perm=_TO_NCHW)[0]
    attrs = _pads(node, nhwc)
    attrs.update(kernel_shape=_spatial(_attr(node, "ksize"), nhwc), strides=_spatial(_attr(node, "strides"), nhwc))
    kind = "MaxPool" if node["op"] == "MaxPool" else "AveragePool"
    y = b.op(kind, [x], "pool", **attrs)[0]
    return b.op("Transpose", [y], "to_nhwc", perm=_TO_NHWC) if nhwc else [y]


def _resize(b: _Builder, node: dict, ins: list[str]) -> list[str]:
    """ResizeBilinear (NHWC, constant (h, w)) → ONNX Resize in NCHW, scales from static shapes."""
    size = b.consts.get(_ref(ins[1]))
    if size is None:
        raise ModelError(f"TFJS graph: node {node['name']}: the output size must be a constant")
    x = b.op("Transpose", [b.tensor(ins[0])], "to_nchw", perm=_TO_NCHW)[0]
    _, _, h, w = b.infer_shape(x, b.inputs[0])
    if h <= 0 or w <= 0:
        raise ModelError(f"TFJS graph: node {node['name']}: input height/width must be static")
    scales = np.array([1, 1, size[0] / h, size[1] / w], np.float32)
    if _attr(node, "align_corners", False):
        coord = "align_corners"
    else:
        coord = "half_pixel" if _attr(node, "half_pixel_centers", False) else "asymmetric"
    y = b.op("Resize", [x, "", b.const(scales, "scales")], "resize", mode="linear",
             coordinate_transformation_mode=coord)[0]
    return b.op("Transpose", [y], "to_nhwc", perm=_TO_NHWC)


def _split(b: _Builder, node: dict, ins: list[str]) -> list[str]:
    """SplitV (value, sizes, axis); a -1 size takes what the others leave."""
    n = int(_attr(node, "num_split"))
    x = b.tensor(ins[0])
    sizes = np.asarray(b.consts[_ref(ins[1])], np.int64).copy()
    axis = int(b.consts[_ref(ins[2])])
    if (sizes < 0).any():
        total = b.infer_shape(x, b.inputs[0])[axis]
        sizes[sizes < 0] = total - sizes[sizes >= 0].sum()
    return b.op("Split", [x, b.const(sizes, "sizes")], "split", n_out=n, axis=axis)


def _pad(b: _Builder, node: dict, ins: list[str]) -> list[str]:
    p = np.asarray(b.consts[_ref(ins[1])], np.int64)
    inputs = [b.tensor(ins[0]), b.const(np.concatenate([p[:, 0], p[:, 1]]), "pads")]
    if node["op"] == "PadV2":
        inputs.append(b.const(np.asarray(b.consts[_ref(ins[2])], np.float32).reshape(()), "pad_value"))
    return b.op("Pad", inputs, "pad", mode="constant")


def _reshape(b: _Builder, node: dict, ins: list[str]) -> list[str]:
    shape = np.asarray(b.consts[_ref(ins[1])], np.int64).copy()
    if len(shape) > 1 and shape[0] == 1:
        shape[0] = 0  # copy the batch dimension so the model runs on batches
    return b.op("Reshape", [b.tensor(ins[0]), b.const(shape, "shape")], "reshape")


_BINARY = {"Add": "Add", "AddV2": "Add", "BiasAdd": "Add", "Sub": "Sub", "Mul": "Mul",
           "RealDiv": "Div", "Maximum": "Max", "Minimum": "Min"}
_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}


def _simple(b: _Builder, node: dict, ins: list[str]) -> list[str]:
    op = node["op"]
    if op in _BINARY:
        return b.op(_BINARY[op], [b.tensor(ins[0]), b.tensor(ins[1])], op.lower())
    if op in _UNARY:
        return b.op(_UNARY[op], [b.tensor(ins[0])], op.lower())
    if op == "LeakyRelu":
        return b.op("LeakyRelu", [b.tensor(ins[0])], "leaky", alpha=float(_attr(node, "alpha", 0.2)))
    if op == "Relu6":
        return b.op("Clip", [b.tensor(ins[0]), b.const(np.float32(0)), b.const(np.float32(6))], "relu6")
    if op == "ConcatV2":
        axis = int(b.consts[_ref(ins[-1])])
        return b.op("Concat", [b.tensor(r) for r in ins[:-1]], "concat", axis=axis)
    if op == "Transpose":
        perm = [int(v) for v in b.consts[_ref(ins[1])]]
        return b.op("Transpose", [b.tensor(ins[0])], "transpose", perm=perm)
    raise ModelError(f"TFJS graph: op {op} (node {node['name']}) is not supported")


_HANDLERS: dict[str, Callable[[_Builder, dict, list[str]], list[str]]] = {
    "MaxPool": _pool, "AvgPool": _pool, "ResizeBilinear": _resize, "SplitV": _split,
    "Pad": _pad, "PadV2": _pad, "Reshape": _reshape,
}


def _topo(nodes: list[dict]) -> list[dict]:
    """Nodes in dependency order (a TFJS file need not list them so); iterative DFS."""
    by_name = {n["name"]: n for n in nodes}
    order: list[dict] = []
    state: dict[str, int] = {}  # 1 = expanded, inputs pending; 2 = placed
    for root in nodes:
        stack = [(root["name"], False)]
        while stack:
            name, ready = stack.pop()
            if state.get(name) == 2:
                continue
            if ready:
                state[name] = 2
                order.append(by_name[name])
                continue
            if state.get(name) == 1:  # reached again from one of its own inputs
                raise ModelError(f"TFJS graph: cycle through node {name}")
            state[name] = 1
            stack.append((name, True))
            for ref in by_name[name].get("input", []):
                src = ref.lstrip("^").split(":")[0]
                if src not in by_name:
                    raise ModelError(f"TFJS graph: node {name} reads unknown node {src}")
                if state.get(src) != 2:
                    stack.append((src, False))
    return order


def _bias_of(node: dict, consumers: dict[str, list[dict]], consts: dict[str, np.ndarray]) -> tuple[np.ndarray, str] | None:
    """(bias, Add node name) when a plain NHWC Conv2D's only consumer adds a constant vector."""
    if node["op"] != "Conv2D" or _attr(node, "data_format", "NHWC") != "NHWC":
        return None
    users = consumers.get(node["name"], [])
    if len(users) != 1 or users[0]["op"] not in ("Add", "AddV2", "BiasAdd"):
        return None
    others = [r for r in users[0]["input"] if _ref(r) != node["name"]]
    if len(others) != 1 or _ref(others[0]) not in consts:
        return None
    bias = consts[_ref(others[0])]
    w = consts.get(_ref(node["input"][1]))
    if w is None:
        return None
    if bias.ndim != 1 or len(bias) != w.shape[3]:
        return None
    return bias, users[0]["name"]


def _build(spec: dict, weights: dict[str, np.ndarray]) -> tuple[_Builder, list[str]]:
    """Walk the TF graph once, folding constants and emitting ONNX nodes; returns graph outputs."""
    nodes = _topo(spec["modelTopology"]["node"])
    consumers: dict[str, list[dict]] = {}
    for n in nodes:
        for ref in n.get("input", []):
            if not ref.startswith("^"):
                consumers.setdefault(ref.split(":")[0], []).append(n)
    b = _Builder(dict(weights))
    absorbed: dict[str, str] = {}  # Add node → the conv whose bias it became
    for node in nodes:
        name, op = node["name"], node["op"]
        ins = [r for r in node.get("input", []) if not r.startswith("^")]
        if op == "Const":
            if name not in b.consts:
                raise ModelError(f"TFJS graph: constant {name} has no entry in the weights manifest")
            continue
        if name in absorbed:
            b.alias[name] = b.alias[absorbed[name]]
            continue
        if op == "Placeholder":
            dims = [int(d.get("size", -1)) for d in _attr(node, "shape", {}).get("dim", [])]
            shape: list[Any] = ["batch"] + [d if d > 0 else f"d{i}" for i, d in enumerate(dims[1:], 1)]
            onnx_name = name.replace("/", "_")
            b.inputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, shape))
            b.alias[name] = onnx_name
            continue
        if ins and all(_ref(r) in b.consts for r in ins):
            folded = _fold(op, node, [b.consts[_ref(r)] for r in ins])
            if folded is not None:
                b.consts[name] = np.asarray(folded)
                continue
        if op in ("Identity", "StopGradient"):
            b.alias[name] = b.tensor(ins[0])
            continue
        if op == "Conv2D":
            fold = _bias_of(node, consumers, b.consts)
            if fold:
                absorbed[fold[1]] = name
            outs = _conv(b, node, ins, fold[0] if fold else None)
        else:
            outs = _HANDLERS.get(op, _simple)(b, node, ins)
        for i, out in enumerate(outs):
            b.alias[name if i == 0 else f"{name}:{i}"] = out
    wanted = sorted(spec.get("signature", {}).get("outputs", {})) or [
        n["name"] for n in nodes if n["name"] not in consumers and n["op"] != "Const"]
    outputs = []
    for ref in wanted:
        out = _ref(ref).replace("/", "_").replace(":", "_")
        b.nodes.append(helper.make_node("Identity", [b.tensor(ref)], [out]))
        outputs.append(out)
    return b, outputs


def _cancel_transposes(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """Merge Transpose chains (dropping identities) and remove nodes nobody reads."""
    producer = {o: n for n in nodes for o in n.output}
    rename: dict[str, str] = {}
    for n in nodes:
        n.input[:] = [rename.get(i, i) for i in n.input]
        if n.op_type != "Transpose" or n.input[0] not in producer:
            continue
        first = producer[n.input[0]]
        if first.op_type != "Transpose":
            continue
        p1 = list(first.attribute[0].ints)
        p2 = list(n.attribute[0].ints)
        perm = [p1[i] for i in p2]
        if perm == list(range(len(perm))) and n.output[0] not in outputs:
            rename[n.output[0]] = first.input[0]
        else:
            n.input[0] = first.input[0]
            n.attribute[0].CopyFrom(helper.make_attribute("perm", perm))
    live = set(outputs)
    kept: list[onnx.NodeProto] = []
    for n in reversed(nodes):
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(i for i in n.input if i)
    return kept[::-1]


def convert(sources: dict[str, Path], out_path: Path, entry: dict) -> None:
    """Registry converter: sources `model` (model.json) and optional `weights` (its one shard)."""
    if "model" not in sources:
        raise ModelError("a tfjs model entry needs source.files.model (the model.json)")
    shards = [sources["weights"]] if "weights" in sources else None
    meta = {"edge_agent.format": str(entry.get("format", "tfjs"))}
    if entry.get("input_size"):
        meta["edge_agent.input_size"] = json.dumps(list(entry["input_size"]))
    convert_model(sources["model"], out_path, entry.get("names"), meta, shards)


def convert_model(model_json: Path, out_path: Path, names: list[str] | None = None,
                  meta: dict[str, str] | None = None, shards: list[Path] | None = None) -> Path:
    """Convert a TFJS graph model to ONNX at `out_path` (written atomically); returns the path.

    `names` (class names) and `meta` go into the model's metadata properties.
    """
    spec, weights = read_weights(Path(model_json), shards)
    b, outputs = _build(spec, weights)
    if len(b.inputs) != 1:
        raise ModelError(f"{model_json}: expected one input, found {len(b.inputs)}")
    nodes = _cancel_transposes(b.nodes, outputs)
    used = {i for n in nodes for i in n.input}
    inits = [numpy_helper.from_array(v, k) for k, v in b.inits.items() if k in used]
    graph = helper.make_graph(nodes, "tfjs", b.inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edge-agent convert_tfjs")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    props = {"edge_agent.format": "tfjs", **(meta or {})}
    if names:
        props["edge_agent.names"] = json.dumps(list(names))
    helper.set_model_props(model, props)
    model = shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".part")
    onnx.save(model, str(tmp))
    tmp.replace(out_path)  # never leave a half-written model where the agent looks for it
    return out_path
