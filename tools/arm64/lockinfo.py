#!/usr/bin/env python3
"""Host-side helper for tools/arm64/setup.sh (runs on the x86 host, never under emulation).

Reads the project's uv.lock (stdlib tomllib, Python >= 3.11) and:

  constraints LOCK                 pip constraints (name==version) for every locked package
  closure LOCK PROJECT EXTRA...    name==version of the locked closure of PROJECT[EXTRA...]
                                   as resolved for a Pi (aarch64, CPython 3.11.2, Linux)
  nearest NAME LOCKED V1 V2 ...    pick the available version nearest to LOCKED
  report SITE LOCK                 installed distributions in SITE: version vs lock, wheel tags
  requires WHEEL                   the wheel's Requires-Dist/Provides-Extra (what keys its deps)
  toplevel SITE DIST               top-level entries DIST owns in SITE (per its RECORD)
  override WHEEL OUTDIR REQ...     copy WHEEL into OUTDIR with each Requires-Dist on REQ's name
                                   given REQ's specifier instead (markers kept): what the wheel
                                   would require if pyproject said REQ; prints the new path
  pins-of-report                   name==version of what a `pip install --report -` on stdin
                                   would install, sorted
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import tomllib
import zipfile
from pathlib import Path

# The Pi's marker environment: Raspberry Pi OS Bookworm 64-bit.
PI_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _load(lock: str) -> dict[str, dict]:
    with open(lock, "rb") as f:
        data = tomllib.load(f)
    pkgs: dict[str, dict] = {}
    for p in data.get("package", []):
        name = _norm(p["name"])
        if name in pkgs:  # a forked resolution: keep the first, warn
            print(
                f"lockinfo: warning: {name} is locked more than once; using "
                f"{pkgs[name].get('version')}",
                file=sys.stderr,
            )
            continue
        pkgs[name] = p
    return pkgs


def _marker_ok(marker: str | None, extras: set[str] | None = None) -> bool:
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # no packaging on the host: pip's vendored copy
        from pip._vendor.packaging.markers import Marker  # type: ignore[no-redef]
    env = dict(PI_ENV)
    if "extra" in marker:
        return any(Marker(marker).evaluate({**env, "extra": e}) for e in (extras or {""}))
    return Marker(marker).evaluate(env)


def _is_project(p: dict) -> bool:
    src = p.get("source", {})
    return "editable" in src or "virtual" in src or src.get("directory") == "."


def constraints(lock: str) -> None:
    for name, p in sorted(_load(lock).items()):
        if _is_project(p) or "version" not in p:
            continue
        print(f"{name}=={p['version']}")


def closure(lock: str, project: str, extras: list[str]) -> None:
    pkgs = _load(lock)
    seen: dict[str, str] = {}
    todo: list[tuple[str, set[str]]] = [(_norm(project), set(extras))]
    while todo:
        name, want_extras = todo.pop()
        p = pkgs.get(name)
        if p is None:
            print(f"lockinfo: warning: {name} is not in the lock", file=sys.stderr)
            continue
        deps = list(p.get("dependencies", []))
        for e in want_extras:
            deps += p.get("optional-dependencies", {}).get(e, [])
        if not _is_project(p):
            seen[name] = p["version"]
        for d in deps:
            if not _marker_ok(d.get("marker")):
                continue
            dn = _norm(d["name"])
            dex = set(d.get("extra", []))
            if dn == _norm(project):  # self-reference such as pifed[edge] inside pifed[full]
                todo.append((dn, dex))
                continue
            if dn in seen and not dex:
                continue
            todo.append((dn, dex))
    for name, ver in sorted(seen.items()):
        print(f"{name}=={ver}")


def _vkey(v: str) -> tuple:
    try:
        from packaging.version import Version
    except ImportError:  # no packaging on the host: pip's vendored copy
        from pip._vendor.packaging.version import Version  # type: ignore[no-redef]
    return (Version(v),)


def nearest(name: str, locked: str, available: list[str]) -> None:
    """Nearest newer release if any (same major first), else the newest older one."""
    avail = sorted({v.strip(",") for v in available if v.strip(",")}, key=_vkey)
    if not avail:
        sys.exit(f"lockinfo: no aarch64 wheel of {name} at any version")
    lk = _vkey(locked)[0]
    newer = [v for v in avail if _vkey(v)[0] > lk]
    older = [v for v in avail if _vkey(v)[0] < lk]
    same_major_newer = [v for v in newer if _vkey(v)[0].major == lk.major]
    pick = (same_major_newer or [])[:1] or (older[-1:] if older else newer[:1])
    print(pick[0])


def report(site: str, lock: str | None) -> None:
    pkgs = _load(lock) if lock and Path(lock).is_file() else {}
    rows = []
    for di in sorted(Path(site).glob("*.dist-info")):
        meta: dict[str, str] = {}
        for line in (di / "METADATA").read_text(errors="replace").splitlines():
            if not line.strip():
                break
            k, _, v = line.partition(":")
            meta.setdefault(k.strip(), v.strip())
        name, ver = meta.get("Name", di.name), meta.get("Version", "?")
        tags = []
        wheel = di / "WHEEL"
        if wheel.is_file():
            tags = [
                ln.split(":", 1)[1].strip()
                for ln in wheel.read_text().splitlines()
                if ln.startswith("Tag:")
            ]
        p = pkgs.get(_norm(name))
        if p is None:
            status = "project" if _norm(name) == "pifed" else "NOT IN LOCK"
            lv = "-"
        else:
            lv = p.get("version", "?")
            status = "= lock" if lv == ver else "DIFFERS FROM LOCK"
        rows.append((name, ver, lv, status, " ".join(tags)))
    header = ("distribution", "version", "lock", "status", "")
    w = [max(len(r[i]) for r in [*rows, header]) for i in range(4)]
    print(
        f"  {'distribution':<{w[0]}}  {'version':<{w[1]}}  {'lock':<{w[2]}}  "
        f"{'status':<{w[3]}}  wheel tag(s)"
    )
    for r in rows:
        print(f"  {r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]:<{w[3]}}  {r[4]}")


def requires(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().split("\n\n", 1)[0].splitlines()
    for line in sorted(
        ln
        for ln in lines
        if ln.startswith(("Requires-Dist:", "Provides-Extra:", "Requires-Python:"))
    ):
        print(line)


def toplevel(site: str, dist: str) -> None:
    for di in Path(site).glob("*.dist-info"):
        if _norm(di.name.removesuffix(".dist-info").rsplit("-", 1)[0]) != _norm(dist):
            continue
        print(di.name)
        tops = set()
        for line in (di / "RECORD").read_text().splitlines():
            first = line.split(",", 1)[0].split("/", 1)[0]
            if first and first != ".." and not first.endswith(".dist-info"):
                tops.add(first)
        for t in sorted(tops):
            print(t)


_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(?:;\s*(.*))?$")


def _override_line(line: str, repl: dict[str, tuple[str, str, str | None]]) -> str:
    """One `Requires-Dist:` line with its specifier replaced if its name is overridden."""
    m = _REQ.match(line.removeprefix("Requires-Dist:"))
    if not m or _norm(m.group(1)) not in repl:
        return line
    name, extras, marker = m.group(1), m.group(2) or "", m.group(4)
    spec, new_extras, new_marker = repl[_norm(name)]
    markers = [f"({x})" for x in (marker, new_marker) if x]
    tail = f"; {' and '.join(markers)}" if markers else ""
    return f"Requires-Dist: {name}{new_extras or extras}{spec}{tail}"


def override(wheel: str, outdir: str, reqs: list[str]) -> None:
    repl: dict[str, tuple[str, str, str | None]] = {}
    for r in reqs:
        m = _REQ.match(r)
        if not m:
            sys.exit(f"lockinfo: cannot parse override {r!r}")
        repl[_norm(m.group(1))] = (m.group(3).replace(" ", ""), m.group(2) or "", m.group(4))
    src = Path(wheel)
    dst = Path(outdir) / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    hit: set[str] = set()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        names = zin.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        head, sep, body = zin.read(meta).decode().partition("\n\n")
        lines = []
        for line in head.splitlines():
            if line.startswith("Requires-Dist:"):
                new = _override_line(line, repl)
                if new != line:
                    m = _REQ.match(line.removeprefix("Requires-Dist:"))
                    hit.add(_norm(m.group(1)) if m else "")
                    print(f"lockinfo: override {line[15:]!r} -> {new[15:]!r}", file=sys.stderr)
                line = new
            lines.append(line)
        new_meta = ("\n".join(lines) + "\n" + sep + body).encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(new_meta).digest()).rstrip(b"=").decode()
        for info in zin.infolist():
            if info.filename == meta:
                zout.writestr(info, new_meta)
            elif info.filename == record:
                rec = [
                    f"{meta},sha256={digest},{len(new_meta)}" if ln.startswith(meta + ",") else ln
                    for ln in zin.read(record).decode().splitlines()
                ]
                zout.writestr(info, "\n".join(rec) + "\n")
            else:
                zout.writestr(info, zin.read(info))
    for name in sorted(set(repl) - hit):
        print(f"lockinfo: warning: override {name}: the wheel does not require it", file=sys.stderr)
    print(dst)


def pins_of_report() -> None:
    report = json.load(sys.stdin)
    meta = [item["metadata"] for item in report.get("install", [])]
    for line in sorted(f"{_norm(m['name'])}=={m['version']}" for m in meta):
        print(line)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "constraints":
        constraints(args[0])
    elif cmd == "closure":
        closure(args[0], args[1], args[2:])
    elif cmd == "nearest":
        nearest(args[0], args[1], args[2:])
    elif cmd == "requires":
        requires(args[0])
    elif cmd == "toplevel":
        toplevel(args[0], args[1])
    elif cmd == "pins-of-report":
        pins_of_report()
    elif cmd == "override":
        override(args[0], args[1], args[2:])
    elif cmd == "report":
        report(args[0], args[1] if len(args) > 1 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
