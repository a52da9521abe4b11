"""TensorFlow.js weights: the `model.json` weights manifest and its `.bin` shards → numpy arrays.

Handles float32 / int32 / bool / int64 weights and the float16 / uint8 / uint16 quantised forms
(uint8/uint16 are affine: q * scale + min). Used by `convert_tfjs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

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
        raise ModelError(f"{model_json}: not a TensorFlow.js graph model ({exc})") from exc
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
            raise ModelError(f"{model_json}: weight file cannot be read: {exc}") from exc
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
