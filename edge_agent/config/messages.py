"""YAML with line numbers, and pydantic errors rewritten as `file:line: key.path: what is wrong`.

A field technician reads these messages, so each one names the key as written in the file, says
what is wrong, and what would be allowed. Values are echoed only after redaction: URL credentials
are masked and secret-looking keys (password, secret, token) are never echoed at all.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..redact import redact_url

Loc = tuple[Any, ...]
_SECRET_WORDS = ("password", "secret", "token", "passwd")
# `password: x`, `{command_secret: "x"}`, `- token: [x]`: the key is one word, the value its first token.
_SECRET_LINE = re.compile(
    r"(?i)(?:^|[\s{,])([\w.-]*(?:password|passwd|secret|token)[\w.-]*)\s*:\s*[\[\s\"']*([^\"'\s#,\[\]{}]+)"
)
_USERINFO = re.compile(r"://([^/\s]+)@")  # greedy: a password may hold an unescaped @


@dataclass
class YamlDoc:
    """A parsed YAML file that remembers where each value was written."""

    path: Path
    node: Node | None
    data: Any
    secrets: list[str] = field(default_factory=list)

    def line(self, loc: Loc) -> int:
        """1-based line of the value at `loc`; for a missing key, the line of its parent mapping."""
        node = self.node
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, MappingNode):
                pair = _member(node, part)
                if pair is None:
                    break
                key, node = pair
                line = key.start_mark.line + 1
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def problem(self, loc: Loc, message: str) -> str:
        """`file:line: key.path: message`, with secrets of this file masked."""
        key = dotted(loc)
        text = f"{self.path}:{self.line(loc)}: {key + ': ' if key else ''}{message}"
        return mask(text, self.secrets)


def mask(text: str, secrets: list[str]) -> str:
    """Known secret values first (they may hold `@`), then any URL credentials left."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return redact_url(text)


def _member(node: MappingNode, name: Any) -> tuple[Node, Node] | None:
    # Last match wins, as in PyYAML: after construction a `<<: *anchor` merge has put the anchor's
    # pairs first, so the keys written in this mapping itself are found before the merged ones.
    for key, value in reversed(node.value):
        if isinstance(key, ScalarNode) and key.value == str(name):
            return key, value
    return None


def dotted(loc: Loc) -> str:
    """('zones', 0, 'kind') -> 'zones[0].kind'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---- parsing ---------------------------------------------------------------------------------------

def parse_yaml(path: str | Path) -> tuple[YamlDoc | None, list[str]]:
    """Read and compose a YAML file; (None, problems) when it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{path}: file not found"]
    except IsADirectoryError:
        return None, [f"{path}: is a folder, not a YAML file"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]
    except OSError as exc:
        return None, [f"{path}: cannot be read: {exc.strerror}"]
    secrets = _secrets_in_text(text)
    # libyaml's parser when the wheel has it: the same nodes and marks, several times faster
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        duplicates = _duplicate_keys(path, node, (), secrets)  # before merges are flattened
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        return None, [mask(_syntax_message(path, exc), secrets)]
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        return None, [mask(f"{path}: YAML error: {exc}", secrets)]
    finally:
        loader.dispose()
    return YamlDoc(path, node, data, secrets), duplicates


def _syntax_message(path: Path, exc: yaml.MarkedYAMLError) -> str:
    # Built from the parts, never str(exc): that quotes the offending line, which may hold a password.
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    what = exc.problem or exc.context or "not valid YAML"
    extra = ""
    if exc.context and exc.problem and exc.context_mark and exc.context_mark.line + 1 != line:
        extra = f" ({exc.context} at line {exc.context_mark.line + 1})"
    hint = ""
    if "mapping values are not allowed" in what:
        hint = "; a value containing ': ' must be quoted, or an indent is wrong"
    elif "found character '\\t'" in what:
        hint = "; indent with spaces, not tabs"
    return f"{path}:{line}: YAML syntax error: {what}{extra}{hint}"


def _duplicate_keys(path: Path, node: Node | None, loc: Loc, secrets: list[str]) -> list[str]:
    """PyYAML keeps the last of two equal keys silently; a technician should hear about it."""
    problems: list[str] = []
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                where = dotted(loc + (key.value,))
                problems.append(mask(f"{path}:{line}: {where}: written twice (first at line "
                                            f"{seen[key.value]}); only the last one would count", secrets))
            seen.setdefault(key.value, line)
            problems += _duplicate_keys(path, value, loc + (key.value,), secrets)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(path, item, loc + (i,), secrets)
    return problems


def _secrets_in_text(text: str) -> list[str]:
    # *_file and *_env values are a path and a variable name, not the secret itself.
    found = {value for key, value in _SECRET_LINE.findall(text) if not key.lower().endswith(("_file", "_env"))}
    for userinfo in _USERINFO.findall(text):
        found.add(userinfo)
        found.update(p for p in userinfo.split(":", 1)[1:] if p)
    # Short strings would blank out ordinary words; URL credentials are masked by pattern anyway.
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


# ---- pydantic errors --------------------------------------------------------------------------------

def describe(err: Any, model: type[BaseModel], secrets: list[str]) -> tuple[Loc, str]:
    """(loc as written in the file, message) for one pydantic error dict."""
    loc: Loc = _without_tags(model, tuple(err["loc"]))
    kind, ctx, msg = err["type"], err.get("ctx") or {}, str(err["msg"])
    secret = any(isinstance(p, str) and any(w in p.lower() for w in _SECRET_WORDS) for p in loc)
    got = "***" if secret else _show(err.get("input"), secrets)
    if kind == "extra_forbidden":
        return loc, _unknown_key(loc, model)
    if kind == "missing":
        return loc, "required, but missing"
    if kind == "literal_error":
        allowed = re.sub(r"'([^']*)'", r"\1", str(ctx.get("expected", ""))).replace(" or ", ", ")
        raw = err.get("input")
        if not secret and str(raw) in allowed.split(", "):  # right value, wrong YAML type
            if isinstance(raw, str):
                return loc, f"{got} must be written without quotes: {raw}"
            return loc, f"{got} must be written as text, in quotes: \"{raw}\""
        return loc, f"{got} is not allowed; use one of {allowed}"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        first = text.split(" ", 1)[0]
        target = _type_at(model, loc)
        if isinstance(target, type) and issubclass(target, BaseModel) and first in target.model_fields:
            loc = loc + (first,)  # a model-level check about one field: point at that field's line
        return loc, text
    if _is_coordinate(loc) and kind in ("greater_than_equal", "less_than_equal"):
        axis = "x" if loc[-1] == 0 else "y"
        return loc, (f"{axis} = {got} is outside the frame; points are fractions of the image "
                     f"({'width' if axis == 'x' else 'height'}), from 0 to 1")
    return loc, _generic(kind, ctx, msg, got, loc)


def _generic(kind: str, ctx: dict, msg: str, got: str, loc: Loc) -> str:
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "id":
        return f"{got} is not a valid id; use only letters, digits and _ . - (no spaces)"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping (`key: value` lines), got {got}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list (`- item` lines or [a, b]), got {got}"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        if kind == "too_short" and bound == 1 and msg.startswith("String"):
            return "must not be empty"
        if len(loc) >= 2 and loc[-2] in ("polygon",) or (len(loc) >= 3 and loc[-3] == "exclude"):
            if kind == "too_long" or msg.startswith("Tuple"):
                return f"a point is [x, y], two numbers; got {got}"
        need = "at least" if kind == "too_short" else "at most"
        outline = loc[-1] == "polygon" or (len(loc) >= 2 and loc[-2] == "exclude")
        noun = ("point" if outline else "entry") if bound == 1 else ("points" if outline else "entries")
        return f"needs {need} {bound} {noun}, has {ctx['actual_length']}"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        whole = "a whole number" if kind.startswith("int") else "a number"
        return f"must be {whole}, got {got}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false, got {got}"
    if kind == "string_type":
        return f"must be text, got {got}; put it in quotes"
    text = msg.replace("Input should be", "must be")
    return f"{text}, got {got}"


def _unknown_key(loc: Loc, model: type[BaseModel]) -> str:
    target = _type_at(model, loc[:-1])
    allowed = list(target.model_fields) if isinstance(target, type) and issubclass(target, BaseModel) else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {str(loc[-1])!r}; {hint}allowed here: {', '.join(allowed)}"


def _is_coordinate(loc: Loc) -> bool:
    # (..., 'polygon', i, j) or (..., 'exclude', k, i, j)
    return (len(loc) >= 3 and isinstance(loc[-1], int) and isinstance(loc[-2], int)
            and (loc[-3] == "polygon" or (len(loc) >= 4 and loc[-4] == "exclude")))


def _show(value: Any, secrets: list[str]) -> str:
    """A short, redacted rendering of an offending value."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        text = repr(list(value))
        return text if len(text) <= 40 and all(not isinstance(v, (dict, list)) for v in value) else \
            f"a list of {len(value)}"
    if isinstance(value, str):
        text = mask(value, secrets)  # before shortening, so no part of a secret survives
        return repr(text if len(text) <= 60 else text[:57] + "...")
    return "nothing" if value is None else repr(value)


def _without_tags(model: Any, loc: Loc) -> Loc:
    """`loc` less the member tags of tagged unions (`tiles.grid.size` -> `tiles.size`): the file
    has no such key. A tag is a name inside the path that is no field of the model there."""
    out: Loc = ()
    for i, part in enumerate(loc):
        tp = _type_at(model, out)
        if isinstance(part, str) and i < len(loc) - 1 and isinstance(tp, type) and issubclass(tp, BaseModel) \
                and part not in tp.model_fields:
            continue
        out += (part,)
    return out


def _type_at(model: Any, loc: Loc) -> Any:
    """The declared type at `loc` inside `model` (lists and optionals unwrapped), or None."""
    tp = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[part] if typing.get_origin(tp) is tuple and part < len(args) else (args[0] if args else None)
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return None
    return _unwrap(tp)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
            tp = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), args[0])
        else:
            return tp


# For cross-checks on the raw YAML data (loader.py, zonecheck.py), which still run when another key
# of the file is invalid.
def get_in(data: Any, *keys: str | int) -> Any:
    """data[k1][k2]... or None when any step is missing or of the wrong shape."""
    for key in keys:
        if isinstance(key, int):
            data = data[key] if isinstance(data, list) and 0 <= key < len(data) else None
        else:
            data = data.get(key) if isinstance(data, dict) else None
    return data


def items_in(data: Any, key: str) -> list[tuple[int, dict]]:
    seq = get_in(data, key)
    return [(i, x) for i, x in enumerate(seq) if isinstance(x, dict)] if isinstance(seq, list) else []
