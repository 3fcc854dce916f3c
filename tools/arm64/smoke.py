"""Smoke test of the pifed edge stack on the emulated Pi userland.

    tools/arm64/python tools/arm64/smoke.py

    PIFED_ARM64_RELEASE=trixie tools/arm64/python tools/arm64/smoke.py

Checks that the aarch64 wheels load and work under Debian bookworm arm64 (Python 3.11.2,
glibc 2.36) or trixie arm64 (Python 3.13, glibc 2.41): tflite_runtime (Python < 3.12 only, as
the edge extra's marker says; on 3.13 it must be absent), ai_edge_litert, pycryptodome
(X25519), grpcio (a loopback server and RPC), numpy, the pifed wheel itself (every `edge.*`
module must import), and that TensorFlow is NOT installed. Exits non-zero on any failure. It
only uses the standard library and the edge set (no pytest).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata as md
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from concurrent import futures

T0 = time.perf_counter()
# The release the wrapper runs (tools/arm64/python exports it) and its Python.
RELEASE = os.environ.get("PIFED_ARM64_RELEASE", "bookworm")
PYTHON_OF = {"bookworm": (3, 11), "trixie": (3, 13)}
FAILURES: list[str] = []


def check(name: str, fn: Callable[[], str | None]) -> None:
    t = time.perf_counter()
    try:
        detail = fn() or ""
    except Exception:
        FAILURES.append(name)
        print(f"FAIL  {name}")
        traceback.print_exc(file=sys.stdout)
        return
    print(f"ok    {name:<28} {detail}  ({time.perf_counter() - t:.2f}s)")


def ver(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "NOT INSTALLED"


def platform_info() -> str:
    libc, libc_version = platform.libc_ver()
    assert platform.machine() == "aarch64", platform.machine()
    assert sys.version_info[:2] == PYTHON_OF[RELEASE], (RELEASE, sys.version)
    assert libc == "glibc", libc
    return (
        f"{RELEASE}: machine={platform.machine()} python={platform.python_version()} "
        f"{libc}={libc_version}"
    )


def no_host_leak() -> str:
    # qemu -L falls back to host paths; nothing on sys.path may be the host's x86_64 site.
    bad = [
        p
        for p in sys.path
        if p.startswith(("/usr/lib/python3/", "/root/.local", "/home/"))
        and os.path.isdir(p)
        and os.listdir(p)
    ]
    assert not bad, f"host directories on sys.path: {bad}"
    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    assert "aarch64" in ext, ext
    return f"ext suffix {ext}"


def numpy_check() -> str:
    import numpy as np

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert float((a @ a.T).trace()) == 506.0
    try:
        if int(np.__version__.split(".")[0]) >= 2:
            from numpy._core._multiarray_umath import __cpu_features__ as feats
        else:
            from numpy.core._multiarray_umath import __cpu_features__ as feats

        on = ",".join(k for k in ("NEON", "ASIMD", "ASIMDHP", "ASIMDDP", "SVE") if feats.get(k))
    except ImportError:
        on = "?"
    return f"numpy {np.__version__} cpu features: {on}"


def litert_check() -> str:
    from ai_edge_litert import interpreter as lit

    assert hasattr(lit, "Interpreter")
    wrappers = [m for n, m in sys.modules.items() if n.startswith("ai_edge_litert._pywrap")]
    so = ", ".join(sorted(os.path.basename(getattr(m, "__file__", "?")) for m in wrappers))
    return f"ai_edge_litert {ver('ai-edge-litert')} ({so or 'no extension loaded'})"


def tflite_check() -> str:
    if sys.version_info >= (3, 12):  # edge extra: tflite-runtime==2.14.0; python_version < '3.12'
        try:
            importlib.import_module("tflite_runtime")
        except ModuleNotFoundError:
            return "not in the edge set on Python >= 3.12 (no wheels), as it must be"
        raise AssertionError("tflite_runtime is installed on Python >= 3.12")
    import tflite_runtime
    from tflite_runtime import interpreter as tfl

    assert hasattr(tfl, "Interpreter")
    # The C++ extension is what matters: interpreter.py loads it at import time.
    wrapper = sys.modules.get("tflite_runtime._pywrap_tensorflow_interpreter_wrapper")
    so = getattr(wrapper, "__file__", "?")
    return f"tflite_runtime {tflite_runtime.__version__} ({os.path.basename(so)})"


def crypto_check() -> str:
    import Crypto
    from Crypto.Hash import SHA256
    from Crypto.Protocol.DH import key_agreement
    from Crypto.PublicKey import ECC

    a = ECC.generate(curve="X25519")
    b = ECC.generate(curve="X25519")
    kdf = lambda x: SHA256.new(x).digest()  # noqa: E731
    k1 = key_agreement(static_priv=a, static_pub=b.public_key(), kdf=kdf)
    k2 = key_agreement(static_priv=b, static_pub=a.public_key(), kdf=kdf)
    assert k1 == k2 and len(k1) == 32
    return f"pycryptodome {Crypto.__version__} X25519 keygen + key agreement"


def grpc_check() -> str:
    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    echo = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req[::-1])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("pifed.Smoke", {"Echo": echo}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = ch.unary_unary("/pifed.Smoke/Echo")(b"ipfed", timeout=30)
        assert reply == b"defpi", reply
    finally:
        server.stop(None)
    return f"grpcio {grpc.__version__} bound 127.0.0.1:{port}, echo RPC ok"


def grpc_aio_check() -> str:
    import grpc.aio  # noqa: F401

    return "grpc.aio imports"


def protobuf_check() -> str:
    from google.protobuf import __version__ as pbv
    from google.protobuf import struct_pb2
    from google.protobuf.internal import api_implementation

    s = struct_pb2.Struct()
    s.update({"k": 1.5})
    assert struct_pb2.Struct.FromString(s.SerializeToString())["k"] == 1.5
    return f"protobuf {pbv} ({api_implementation.Type()} backend)"


def pifed_check() -> str:
    import pifed

    where = os.path.dirname(pifed.__file__)
    site = os.environ.get("PYTHONPATH", "").split(":")
    assert any(where.startswith(p) for p in site if p), f"pifed imported from {where}"
    assert not os.path.exists(os.path.join(os.path.dirname(where), "pyproject.toml")), (
        "pifed came from the source tree, not the wheel"
    )
    return f"pifed {ver('pifed')} from the wheel ({where})"


def edge_modules_check() -> str:
    """Every module of the project's `edge` package (the Pi client) imports without TF."""
    from pathlib import Path

    import edge

    # Walk the files, not pkgutil: pkgutil skips sub-packages without an __init__.py.
    base = Path(edge.__file__).parent
    subs = sorted(
        ".".join(("edge", *p.relative_to(base).with_suffix("").parts)).removesuffix(".__init__")
        for p in base.rglob("*.py")
        if p.name != "__init__.py" or p.parent != base
    )
    names = ["edge", *subs]
    for name in names:
        importlib.import_module(name)
    heavy = sorted(
        m for m in ("tensorflow", "tensorflow_federated", "jax", "keras") if m in sys.modules
    )
    assert not heavy, f"edge modules pulled in {heavy}"
    return f"{len(names)} modules: {', '.join(n.removeprefix('edge.') for n in names[1:])}"


def no_tensorflow() -> str:
    try:
        importlib.import_module("tensorflow")
    except ModuleNotFoundError:
        return "import tensorflow -> ModuleNotFoundError (as it must)"
    raise AssertionError("tensorflow is importable on the edge set; it must not be installed")


if __name__ == "__main__":
    print(f"pifed arm64 smoke: {getattr(sys, '_base_executable', sys.executable)}")
    check("platform", platform_info)
    check("no host leak", no_host_leak)
    check("numpy", numpy_check)
    check("tflite_runtime.interpreter", tflite_check)
    check("ai_edge_litert.interpreter", litert_check)
    check("Crypto.PublicKey.ECC", crypto_check)
    check("grpc", grpc_check)
    check("grpc.aio", grpc_aio_check)
    check("protobuf", protobuf_check)
    check("pifed", pifed_check)
    check("pifed edge modules", edge_modules_check)
    check("no tensorflow", no_tensorflow)
    try:
        import edge

        dists: tuple[str, ...] = edge.EDGE_DISTRIBUTIONS
    except ImportError:  # already reported by the "pifed" check
        dists = ("pifed",)
    print("versions: " + ", ".join(f"{d} {ver(d)}" for d in dists))
    print(
        f"{'FAILED: ' + ', '.join(FAILURES) if FAILURES else 'all ok'} "
        f"({time.perf_counter() - T0:.1f}s)"
    )
    sys.exit(1 if FAILURES else 0)
