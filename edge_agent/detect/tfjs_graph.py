"""TFJS graph walk and rewriting: dependency order, constant folding, Conv2D bias folding,
output naming, and the peephole pass that cancels back-to-back Transposes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import ModelError
from .tfjs_ops import Builder, base_ref, emit_conv, emit_op, fold_constants, tf_attr


def _topo(nodes: list[dict], roots: list[str] | None = None) -> list[dict]:
    """Nodes in dependency order (a TFJS file need not list them so); iterative DFS.

    With `roots`, only those nodes and what they depend on.
    """
    by_name = {n["name"]: n for n in nodes}
    order: list[dict] = []
    state: dict[str, int] = {}  # 1 = expanded, inputs pending; 2 = placed
    for root in roots or [n["name"] for n in nodes]:
        if root not in by_name:
            raise ModelError(f"TFJS graph: no node {root} to take as an output")
        stack = [(root, False)]
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
    if node["op"] != "Conv2D" or tf_attr(node, "data_format", "NHWC") != "NHWC":
        return None
    users = consumers.get(node["name"], [])
    if len(users) != 1 or users[0]["op"] not in ("Add", "AddV2", "BiasAdd"):
        return None
    others = [r for r in users[0]["input"] if base_ref(r) != node["name"]]
    if len(others) != 1 or base_ref(others[0]) not in consts:
        return None
    bias = consts[base_ref(others[0])]
    w = consts.get(base_ref(node["input"][1]))
    if w is None:
        return None
    if bias.ndim != 1 or len(bias) != w.shape[3]:
        return None
    return bias, users[0]["name"]


CONV_OPS = ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")


def build_graph(spec: dict, weights: dict[str, np.ndarray],
                outputs: list[str] | None = None) -> tuple[Builder, list[str]]:
    """Walk the TF graph once, folding constants and emitting ONNX nodes; returns graph outputs.

    `outputs` (TF node names) cuts the graph there instead of at its signature's outputs, e.g.
    before a decode the backend does itself.
    """
    nodes = _topo(spec["modelTopology"]["node"], [base_ref(o) for o in outputs] if outputs else None)
    consumers: dict[str, list[dict]] = {}
    for n in nodes:
        for ref in n.get("input", []):
            if not ref.startswith("^"):
                consumers.setdefault(ref.split(":")[0], []).append(n)
    b = Builder(dict(weights))
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
            dims = [int(d.get("size", -1)) for d in tf_attr(node, "shape", {}).get("dim", [])]
            shape: list[Any] = ["batch"] + [d if d > 0 else f"d{i}" for i, d in enumerate(dims[1:], 1)]
            onnx_name = name.replace("/", "_")
            b.inputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, shape))
            b.alias[name] = onnx_name
            continue
        if ins and all(base_ref(r) in b.consts for r in ins):
            folded = fold_constants(op, node, [b.consts[base_ref(r)] for r in ins])
            if folded is not None:
                b.consts[name] = np.asarray(folded)
                continue
        if op in ("Identity", "StopGradient"):
            b.alias[name] = b.tensor(ins[0])
            continue
        if op in CONV_OPS:
            fold = _bias_of(node, consumers, b.consts)
            if fold:
                absorbed[fold[1]] = name
            outs = emit_conv(b, node, ins, fold[0] if fold else None)
        else:
            outs = emit_op(b, node, ins)
        for i, out in enumerate(outs):
            b.alias[name if i == 0 else f"{name}:{i}"] = out
    wanted = outputs or sorted(spec.get("signature", {}).get("outputs", {})) or [
        n["name"] for n in nodes if n["name"] not in consumers and n["op"] != "Const"]
    outputs = []
    for ref in wanted:
        out = base_ref(ref).replace("/", "_").replace(":", "_")
        b.nodes.append(helper.make_node("Identity", [b.tensor(ref)], [out]))
        outputs.append(out)
    return b, outputs


def cancel_transposes(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
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
