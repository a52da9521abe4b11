"""TensorFlow.js graph model (`model.json` + `.bin` shards) → ONNX, with numpy and onnx only.

Reads the graph nodes and the weights manifest (float32, int32 and the float16 / uint8 / uint16
quantised forms), folds nodes whose inputs are all constants (e.g. the SparseToDense shape
arithmetic onnx-tf leaves behind) and maps the rest to ONNX. TF's NHWC convolutions become
NCHW Conv wrapped in Transposes; a peephole pass then cancels back-to-back Transposes, so a
graph that came from ONNX (onnx-tf) ends up almost free of them. A bias Add right after a
Conv2D is folded into the Conv. The batch dimension is made dynamic (Reshape targets that
start with the batch size 1 copy the batch instead).

Supported ops (those of onnx-tf exports such as NanoDet's and of TF-converted MobileNetV3
CenterNet; any other op is a clear ModelError): Placeholder, Const, Identity, Conv2D,
DepthwiseConv2dNative and the fused _FusedConv2D / FusedDepthwiseConv2dNative (BiasAdd, then
Relu or Relu6), Add, AddV2, BiasAdd, Sub, Mul, RealDiv, Relu, Relu6, LeakyRelu, Sigmoid, Tanh,
Mean, MaxPool, AvgPool, Pad, PadV2, ConcatV2, Transpose, Reshape, SplitV, ResizeBilinear, and
Cast / SparseToDense on constants (folded).

Layout: `tfjs_weights` reads the manifest and shards, `tfjs_ops` maps single ops to ONNX,
`tfjs_graph` walks and rewrites the graph; this module holds the public entry points.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from ..errors import ModelError
from .tfjs_graph import build_graph, cancel_transposes
from .tfjs_ops import OPSET
from .tfjs_weights import read_weights

__all__ = ["OPSET", "convert", "convert_model", "read_weights"]


def convert(sources: dict[str, Path], out_path: Path, entry: dict) -> None:
    """Registry converter: sources `model` (model.json) and optional `weights` (its one shard)."""
    if "model" not in sources:
        raise ModelError("a tfjs model entry needs source.files.model (the model.json)")
    shards = [sources["weights"]] if "weights" in sources else None
    meta = {"edge_agent.format": str(entry.get("format", "tfjs"))}
    if entry.get("input_size"):
        meta["edge_agent.input_size"] = json.dumps(list(entry["input_size"]))
    outputs = (entry.get("convert") or {}).get("outputs")
    convert_model(sources["model"], out_path, entry.get("names"), meta, shards, outputs)


def convert_model(model_json: Path, out_path: Path, names: list[str] | None = None,
                  meta: dict[str, str] | None = None, shards: list[Path] | None = None,
                  outputs: list[str] | None = None) -> Path:
    """Convert a TFJS graph model to ONNX at `out_path` (written atomically); returns the path.

    `names` (class names) and `meta` go into the model's metadata properties; `outputs` (TF
    node names) cuts the graph there instead of at its signature's outputs.
    """
    spec, weights = read_weights(Path(model_json), shards)
    b, outputs = build_graph(spec, weights, outputs)
    if len(b.inputs) != 1:
        raise ModelError(f"{model_json}: expected one input, found {len(b.inputs)}")
    nodes = cancel_transposes(b.nodes, outputs)
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
