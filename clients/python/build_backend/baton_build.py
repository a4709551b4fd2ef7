"""The package's PEP 517 build backend, on the standard library alone.

Why not setuptools or hatchling: pip builds a package in an isolated environment it fills from
an index, and setuptools of the Python in use may lack `bdist_wheel` (the `wheel` package) while
hatchling is not installed at all, so `pip install clients/python` would need the network.
This backend needs nothing: a pure-Python wheel is a zip with three metadata files. It reads
the name, version, dependencies and extras from pyproject.toml (`[project]`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import zipfile
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")


def _project() -> Dict[str, Any]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _dist(p: Dict[str, Any]) -> str:
    return p["name"].replace("-", "_")


def _metadata(p: Dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {p['name']}",
        f"Version: {p['version']}",
        f"Summary: {p.get('description', '')}",
    ]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    if "license" in p and "text" in p["license"]:
        lines.append(f"License: {p['license']['text']}")
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    readme = p.get("readme")
    body = ""
    if isinstance(readme, str):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _files() -> List[Tuple[str, str]]:
    """(path in the wheel, path on disk) of every file of the packages under src/."""
    found = []
    for d, dirs, files in os.walk(SRC):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__" and not x.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(d, name)
            found.append((os.path.relpath(path, SRC).replace(os.sep, "/"), path))
    return found


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _wheel(directory: str, contents: List[Tuple[str, bytes]]) -> str:
    p = _project()
    dist, version = _dist(p), p["version"]
    info = f"{dist}-{version}.dist-info"
    contents = contents + [
        (f"{info}/METADATA", _metadata(p).encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: baton_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    record = [_record_line(n, d) for n, d in contents] + [f"{info}/RECORD,,"]
    contents.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    name = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in contents:
            z.writestr(zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0)), d)
    return name


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return []


get_requires_for_build_sdist = get_requires_for_build_wheel
get_requires_for_build_editable = get_requires_for_build_wheel


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    contents = []
    for name, path in _files():
        with open(path, "rb") as f:
            contents.append((name, f.read()))
    return _wheel(wheel_directory, contents)


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    # A .pth file puts src/ on sys.path: edits take effect without reinstalling.
    return _wheel(wheel_directory, [(f"{_dist(_project())}.pth", (SRC + "\n").encode())])


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    p = _project()
    base = f"{_dist(p)}-{p['version']}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in ("pyproject.toml", "README.md", "build_backend/baton_build.py"):
            t.add(os.path.join(ROOT, rel), f"{base}/{rel}")
        for rel, path in _files():
            t.add(path, f"{base}/src/{rel}")
        info = _metadata(p).encode()
        entry = tarfile.TarInfo(f"{base}/PKG-INFO")
        entry.size = len(info)
        t.addfile(entry, io.BytesIO(info))
    return name
