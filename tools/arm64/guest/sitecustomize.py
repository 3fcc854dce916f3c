"""Loaded by the emulated Python that tools/arm64/python starts (this dir is on PYTHONPATH).

Without binfmt_misc the host kernel cannot execute the aarch64 python3.11, so
`subprocess.run([sys.executable, ...])` fails with "Exec format error". Pointing
sys.executable at the wrapper script (a host bash script that starts qemu again) makes such
child processes work. Opt out with PIFED_ARM64_EXEC_SHIM=0.
"""

import os
import sys

_wrapper = os.environ.get("PIFED_ARM64_PYTHON", "")
if os.environ.get("PIFED_ARM64_EXEC_SHIM", "1") != "0" and os.path.isfile(_wrapper):
    sys.executable = _wrapper

# Chain to Debian's own sitecustomize (the apport hook; a no-op without apport).
_debian = os.path.join(
    sys.prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "sitecustomize.py"
)
if os.path.isfile(_debian):
    with open(_debian) as _f:
        exec(compile(_f.read(), _debian, "exec"), {"__name__": "_debian_sitecustomize"})
del _wrapper, _debian
