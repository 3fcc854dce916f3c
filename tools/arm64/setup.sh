#!/usr/bin/env bash
# Build an emulated Raspberry Pi OS 64-bit userland and install pifed[edge] into it as
# aarch64 wheels. Two releases:
#   bookworm (default)  Debian 12 arm64, Python 3.11.2, glibc 2.36; the host's qemu-user-static
#   trixie              Debian 13 arm64, Python 3.13, glibc 2.41; Trixie's own static qemu 10
#                       (from its amd64 qemu-user package), pip run inside the emulated Python
#
#   tools/arm64/setup.sh [--release bookworm|trixie] [PROJECT_DIR]
#
# Environment:
#   PIFED_ARM64_RELEASE bookworm|trixie (default bookworm; --release wins)
#   PIFED_ARM64_CACHE   cache dir (default $HOME/.cache/pifed/arm64). Bookworm uses it as is,
#                       trixie its subdir trixie/, so both coexist.
#   PIFED_PROJECT       project root (default: the repo containing this script)
#   PIFED_ARM64_LOCK    lock file giving the pins (bookworm default PROJECT/uv.lock; "none" =
#                       unpinned, i.e. exactly what `pip install ".[edge]"` resolves today).
#                       Trixie defaults to "none": uv.lock only resolves CPython 3.11.
#   PIFED_ARM64_OVERRIDE  opt-in: requirements that replace the project's own on the same name,
#                       as if pyproject said so (markers kept), e.g. "ai-edge-litert==2.1.0" to try
#                       another version; their lock pins are dropped. Default none on both
#                       releases: pyproject pins numpy per Python, so Trixie installs as a Pi does.
#   PIFED_ARM64_CONSTRAINTS  extra pip constraints file (e.g. exact pins for a trixie set)
#   PIFED_ARM64_MIRROR  Debian mirror for trixie (default: the host's deb.debian.org-style URI)
#   PIFED_ARM64_TEST_REQS  test tools for the separate test dir
#                       (default "pytest pytest-timeout hypothesis", the suite's own needs)
#   PIFED_HOST_PYTHON   host python with pip, >= 3.11 (default python3)
#   PIFED_ARM64_EXTRA   the project extra to install (default edge: a Pi; server: a Pi as the
#                       coordinator, into site-server/ beside site/, so the edge set's size stays
#                       the edge set's; tools/arm64/python reads the same variable)
#
# Re-runnable: every step is skipped when its stamp still matches. See README.md.
set -euo pipefail

RELEASE="${PIFED_ARM64_RELEASE:-bookworm}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --release) [[ $# -ge 2 ]] || { echo "setup.sh: --release needs a value" >&2; exit 2; }
               RELEASE="$2"; shift 2 ;;
    --release=*) RELEASE="${1#--release=}"; shift ;;
    --bookworm|--trixie) RELEASE="${1#--}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) break ;;
  esac
done
case $RELEASE in bookworm|trixie) ;; *) echo "setup.sh: unknown release '$RELEASE' (bookworm|trixie)" >&2; exit 2 ;; esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="${1:-${PIFED_PROJECT:-$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))}}"
PROJECT="$(cd "$PROJECT" && pwd)"
CACHE="${PIFED_ARM64_CACHE:-$HOME/.cache/pifed/arm64}"
[[ $RELEASE == bookworm ]] || CACHE="$CACHE/$RELEASE"   # bookworm keeps the original layout
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
ROOT="$CACHE/root"              # the emulated / (dpkg -x of the release's arm64 .debs)
DEBS="$CACHE/debs"              # cached .debs
WHEELHOUSE="$CACHE/wheelhouse"  # cached aarch64 wheels (reinstalls run offline from here)
DIST="$CACHE/dist"              # the project's freshly built wheel
EXTRA="${PIFED_ARM64_EXTRA:-edge}"
case $EXTRA in edge|server) ;; *) echo "setup.sh: PIFED_ARM64_EXTRA=$EXTRA: edge or server" >&2; exit 2 ;; esac
SITE="$CACHE/site"              # pifed[edge] for aarch64: what a Pi installs
[[ $EXTRA == edge ]] || SITE="$CACHE/site-$EXTRA"   # pifed[server]: a Pi as the coordinator
TESTSITE="$CACHE/test-site"     # pytest & co, kept apart so SITE's size stays honest
if [[ $RELEASE == bookworm ]]; then
  LOCK="${PIFED_ARM64_LOCK:-$PROJECT/uv.lock}"
else
  LOCK="${PIFED_ARM64_LOCK:-none}"
fi
OVERRIDE="${PIFED_ARM64_OVERRIDE:-}"
EXTRA_CONS="${PIFED_ARM64_CONSTRAINTS:-}"
[[ -z $EXTRA_CONS || -f $EXTRA_CONS ]] || { echo "setup.sh: PIFED_ARM64_CONSTRAINTS: no file $EXTRA_CONS" >&2; exit 2; }
TEST_REQS="${PIFED_ARM64_TEST_REQS:-pytest pytest-timeout hypothesis}"
PY="${PIFED_HOST_PYTHON:-python3}"
# uv: on PATH, else the one `uv run` names in $UV (`python3 -m pip install uv` may put it off PATH)
UV_BIN="$(command -v uv 2>/dev/null || true)"
if [[ -z $UV_BIN && -n ${UV:-} && -x ${UV:-} ]]; then UV_BIN="$UV"; fi
LOCKINFO="$HERE/lockinfo.py"

if [[ $RELEASE == bookworm ]]; then
  PYV=3.11
  # Debian bookworm arm64 packages that make a working python3.11 (see arm64-notes.md).
  DEB_PKGS=(
    python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3.11
    libc6 zlib1g libexpat1 libffi8 libssl3 libstdc++6 libgcc-s1 libbz2-1.0 liblzma5
    libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libdb5.3 libgdbm6 libnsl2
    libtirpc3 libcrypt1 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0
    libcom-err2 libkeyutils1
  )
  # Wheel tags a Pi's pip accepts: glibc 2.36 => manylinux_2_17 .. manylinux_2_36, every one of
  # them (pip does not widen a --platform to older glibcs; ai-edge-litert 2.x is manylinux_2_27).
  PIP_TARGET_OPTS=()
  for _glibc in $(seq 36 -1 17); do PIP_TARGET_OPTS+=(--platform "manylinux_2_${_glibc}_aarch64"); done
  PIP_TARGET_OPTS+=(--platform manylinux2014_aarch64 --python-version 3.11 --implementation cp
    --only-binary=:all:)
else
  PYV=3.13
  # Debian trixie arm64 (trixie-notes.md): python3.13 with pip's wheel; several libraries
  # carry Trixie's t64 suffix. openssl-provider-legacy, media-types, tzdata, netbase: files
  # the stdlib and pip read, which qemu would otherwise take from the host.
  DEB_PKGS=(
    python3.13-minimal libpython3.13-minimal libpython3.13-stdlib python3.13 python3.13-venv
    python3-pip-whl python3-setuptools-whl
    libc6 zlib1g libexpat1 libffi8 libssl3t64 openssl-provider-legacy libzstd1 libstdc++6
    libgcc-s1 libbz2-1.0 liblzma5 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8t64
    libdb5.3t64 media-types tzdata netbase
  )
  # pip runs INSIDE the emulated python3.13: it takes the tags (glibc 2.41, cp313, aarch64)
  # and evaluates the environment markers for the Pi itself. A host pip of another version
  # would evaluate `python_version` markers for the host (trixie-notes.md).
  PIP_TARGET_OPTS=(--only-binary=:all:)
fi
SETUP_VERSION=1   # bump to invalidate every stamp

# ---------------------------------------------------------------- helpers
T0=$EPOCHREALTIME
_ts() { local n=$EPOCHREALTIME; awk -v a="$1" -v b="$n" 'BEGIN{printf "%.1f", b-a}'; }
STEP_T=$T0
step() { STEP_T=$EPOCHREALTIME; printf '\n== %s\n' "$*"; }
done_step() { printf '   -> %s (%ss)\n' "$*" "$(_ts "$STEP_T")"; }
say() { printf '   %s\n' "$*"; }
warn() { printf '   WARNING: %s\n' "$*" >&2; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }
hash_of() { sha256sum | cut -c1-16; }
# newest cached .deb of a package (arm64, or arch-independent "all") if several accumulated
cached_deb() {
  local f=()
  shopt -s nullglob; f=("$DEBS/${1}"_*_arm64.deb "$DEBS/${1}"_*_all.deb); shopt -u nullglob
  [[ ${#f[@]} -gt 0 ]] && printf '%s\n' "${f[@]}" | sort -V | tail -n1
  return 0
}

if [[ $(id -u) -eq 0 ]]; then SUDO=(); APT_DL_OPTS=(-o APT::Sandbox::User=root)
elif command -v sudo >/dev/null; then SUDO=(sudo); APT_DL_OPTS=()
else SUDO=(); APT_DL_OPTS=(); fi
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_update() {  # at most once per run
  [[ $APT_UPDATED -eq 1 ]] && return 0
  say "apt-get update"
  "${SUDO[@]}" apt-get update -qq
  APT_UPDATED=1
}

# Trixie's packages (arm64 userland, amd64 qemu-user) come through apt with its OWN sources,
# lists and cache under $CACHE/apt: the host's apt setup and dpkg architectures stay untouched.
TAPT="$CACHE/apt"
MIRROR="${PIFED_ARM64_MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
  /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | tr -d ' ' | sed 's:/$::' || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
TAPT_OPTS=(-o "Dir::Etc::sourcelist=$TAPT/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$TAPT/lists" -o "Dir::Cache=$TAPT/cache" -o Dir::State::status=/dev/null
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Architectures::=amd64)
TAPT_UPDATED=0
tapt_update() {  # at most once per run
  [[ $TAPT_UPDATED -eq 1 ]] && return 0
  mkdir -p "$TAPT/lists/partial" "$TAPT/cache/archives/partial"
  printf 'deb [arch=arm64,amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "$MIRROR" "$RELEASE" "$MIRROR" "$RELEASE-updates" >"$TAPT/sources.list"
  say "apt-get update ($RELEASE arm64+amd64 lists from $MIRROR, own dir $TAPT)"
  apt-get -qq "${TAPT_OPTS[@]}" "${APT_DL_OPTS[@]}" update
  TAPT_UPDATED=1
}
#   tapt_download DIR PKG:ARCH...   (refreshes the lists once if they are missing or stale)
tapt_download() {
  local dir="$1"; shift
  mkdir -p "$dir"
  [[ -f $TAPT/sources.list ]] || tapt_update
  if ! (cd "$dir" && apt-get -qq "${TAPT_OPTS[@]}" "${APT_DL_OPTS[@]}" download "$@" 2>/dev/null); then
    tapt_update
    (cd "$dir" && apt-get -qq "${TAPT_OPTS[@]}" "${APT_DL_OPTS[@]}" download "$@")
  fi
}

# One lock so two jobs sharing a cache (CI matrix, two shells) don't interleave.
exec 9>"$CACHE/.setup.lock"
flock 9

printf 'pifed arm64 setup\n  project: %s\n  cache:   %s\n' "$PROJECT" "$CACHE"

# ---------------------------------------------------------------- 1. qemu
if [[ $RELEASE == trixie ]]; then
  # Bookworm's qemu 7.2 starts Trixie's Python, but ai-edge-litert 2.x crashes earlier under
  # it: use Trixie's own static qemu-aarch64 (qemu 10), unpacked into the cache (no install).
  step "1/5 qemu-aarch64 from $RELEASE's qemu-user:amd64"
  QEMU="$CACHE/qemu/usr/bin/qemu-aarch64"
  if [[ -x $QEMU && -f $CACHE/qemu/.pifed-deb ]]; then
    done_step "present: $("$QEMU" --version | head -1)"
  else
    compgen -G "$DEBS/qemu-user_*_amd64.deb" >/dev/null || tapt_download "$DEBS" qemu-user:amd64
    qdeb="$(printf '%s\n' "$DEBS"/qemu-user_*_amd64.deb | sort -V | tail -n1)"
    rm -rf "$CACHE/qemu.tmp" "$CACHE/qemu.new"
    dpkg -x "$qdeb" "$CACHE/qemu.tmp"
    # The package has every target's emulator (~450 MB unpacked): keep only aarch64's (16 MB).
    mkdir -p "$CACHE/qemu.new/usr/bin"
    mv "$CACHE/qemu.tmp/usr/bin/qemu-aarch64" "$CACHE/qemu.new/usr/bin/"
    basename "$qdeb" >"$CACHE/qemu.new/.pifed-deb"
    rm -rf "$CACHE/qemu.tmp" "$CACHE/qemu"; mv "$CACHE/qemu.new" "$CACHE/qemu"
    done_step "unpacked $("$QEMU" --version | head -1)"
  fi
else
  step "1/5 qemu-user-static"
  if ! command -v qemu-aarch64-static >/dev/null; then
    if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null 2>&1; then
      apt_update
      "${SUDO[@]}" apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
    fi
    done_step "installed $(qemu-aarch64-static --version | head -1)"
  else
    done_step "present: $(qemu-aarch64-static --version | head -1)"
  fi
  QEMU="$(command -v qemu-aarch64-static)"
fi
CPU="${PIFED_ARM64_CPU:-cortex-a72}"
# The emulated python with a clean environment: qemu-user passes the host's environment to
# the guest and falls back to the host's files (/etc/pip.conf, ~/.config/pip) for any path
# the root lacks, so drop PYTHON*/PIP_* and HOME and point pip's config at /dev/null.
guest() {
  local keep=()
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_NO_CACHE_DIR; do
    [[ -n ${!v:-} ]] && keep+=("$v=${!v}")
  done
  env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$CACHE/home" PIP_CONFIG_FILE=/dev/null \
    PYTHONNOUSERSITE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 QEMU_LD_PREFIX="$ROOT" QEMU_CPU="$CPU" \
    "${keep[@]}" "$@"
}

# ---------------------------------------------------------------- 2. root
step "2/5 emulated root (Debian $RELEASE arm64) at $ROOT"
ROOT_LAYOUT=2     # bump when the post-processing of the root changes
ROOT_KEY="$(printf '%s\n' "v$SETUP_VERSION" "layout$ROOT_LAYOUT" "${DEB_PKGS[@]}" | hash_of)"
if [[ -x $ROOT/usr/bin/python$PYV && "$(cat "$ROOT/.pifed-stamp" 2>/dev/null)" == "$ROOT_KEY" ]]; then
  done_step "up to date (stamp $ROOT_KEY)"
else
  mkdir -p "$DEBS"
  missing=()
  for p in "${DEB_PKGS[@]}"; do
    [[ -n "$(cached_deb "$p")" ]] || missing+=("$p:arm64")
  done
  if [[ ${#missing[@]} -gt 0 && $RELEASE == trixie ]]; then
    say "apt-get download ${#missing[@]} $RELEASE arm64 packages"
    tapt_download "$DEBS" "${missing[@]}"
  elif [[ ${#missing[@]} -gt 0 ]]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      say "dpkg --add-architecture arm64"
      "${SUDO[@]}" dpkg --add-architecture arm64
      apt_update
    fi
    say "apt-get download ${#missing[@]} arm64 packages"
    if ! (cd "$DEBS" && apt-get download -qq "${APT_DL_OPTS[@]}" "${missing[@]}" 2>/dev/null); then
      apt_update   # stale lists (404) or arm64 lists never fetched
      (cd "$DEBS" && apt-get download -qq "${APT_DL_OPTS[@]}" "${missing[@]}")
    fi
  fi
  rm -rf "$ROOT.tmp"
  mkdir -p "$ROOT.tmp"
  for p in "${DEB_PKGS[@]}"; do
    # newest cached build of each package if several accumulated
    deb="$(cached_deb "$p")"
    dpkg -x "$deb" "$ROOT.tmp"
    basename "$deb" >>"$ROOT.tmp/.pifed-debs"
  done
  # Absolute symlinks would resolve to the HOST's files: the emulated python is started
  # by its host path, so the kernel, not qemu -L, follows them
  # (usr/lib/python3.11/sitecustomize.py -> /etc/python3.11/...). Make them relative.
  while IFS= read -r -d '' l; do
    ln -sfn "$(realpath -ms --relative-to="$(dirname "$l")" "$ROOT.tmp$(readlink "$l")")" "$l"
  done < <(find "$ROOT.tmp" -type l -lname '/*' -print0)
  if [[ $RELEASE == trixie ]]; then
    # Merged /usr: the loader is /lib/ld-linux-aarch64.so.1, which only usrmerge's links
    # (not the .debs) provide. Without them qemu: "Could not open '/lib/ld-linux-aarch64.so.1'".
    for d in bin sbin lib; do
      if [[ -d $ROOT.tmp/$d && ! -L $ROOT.tmp/$d ]]; then
        mkdir -p "$ROOT.tmp/usr/$d"; cp -a "$ROOT.tmp/$d/." "$ROOT.tmp/usr/$d/"; rm -rf "${ROOT:?}.tmp/$d"
      fi
      ln -sfn "usr/$d" "$ROOT.tmp/$d"
    done
  fi
  # /usr/bin/python3 as on the Pi (the python3 package itself is not needed).
  ln -sfn "python$PYV" "$ROOT.tmp/usr/bin/python3"
  printf '%s\n' "$ROOT_KEY" >"$ROOT.tmp/.pifed-stamp"
  rm -rf "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
  done_step "built from ${#DEB_PKGS[@]} .debs"
fi
say "$(guest "$QEMU" "$ROOT/usr/bin/python$PYV" -S -c \
  'import platform,sys;print("emulated:", platform.machine(), sys.version.split()[0], *platform.libc_ver())')"

# ---------------------------------------------------------------- pip
if [[ $RELEASE == trixie ]]; then
  # The Pi's own pip, from Debian's python3-pip-whl, installed into $CACHE/pip-tool by running
  # the wheel on itself (ensurepip would re-execute sys.executable: "Exec format error").
  PIPWHL="$(printf '%s\n' "$ROOT"/usr/share/python-wheels/pip-*.whl | sort -V | tail -n1)"
  PIPTOOL="$CACHE/pip-tool"
  if [[ "$(cat "$PIPTOOL/.pifed-stamp" 2>/dev/null)" != "$(basename "$PIPWHL")" ]]; then
    rm -rf "$PIPTOOL"
    guest "$QEMU" "$ROOT/usr/bin/python$PYV" "$PIPWHL/pip" install -q --no-index --no-deps \
      --no-compile --root-user-action=ignore --target "$PIPTOOL" "$PIPWHL"
    basename "$PIPWHL" >"$PIPTOOL/.pifed-stamp"
  fi
  PIP=(guest PYTHONPATH="$PIPTOOL" "$QEMU" "$ROOT/usr/bin/python$PYV" -m pip)
  say "pip: $("${PIP[@]}" --version | cut -d' ' -f1-2) inside the emulated python$PYV"
elif "$PY" -m pip --version >/dev/null 2>&1; then
  PIP=("$PY" -m pip)
elif [[ -n $UV_BIN ]]; then
  PIP=("$UV_BIN" tool run --from pip pip)
else
  say "host has no pip: apt-get install python3-pip"
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends python3-pip >/dev/null 2>&1 \
    || { apt_update; "${SUDO[@]}" apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }
  # $PY may be a venv's python (no pip even now): use the system one that just got pip
  "$PY" -m pip --version >/dev/null 2>&1 || PY=/usr/bin/python3
  PIP=("$PY" -m pip)
fi
PIP_Q=(--disable-pip-version-check --no-input -q --progress-bar off)
# --target installs are checked against the HOST's site-packages (bogus "conflicts" with
# x86 packages): silence that, and root's venv nag. The filter drops only the notices
# about local file:// indexes that lack a project (a pip.conf on some dev machines).
PIP_INST_Q=(--no-warn-conflicts --root-user-action=ignore --no-warn-script-location)
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# pip resolution for the Pi: resolve+download into the wheelhouse (offline first,
# the index only if something is missing), then install offline from the wheelhouse.
#   fetch_and_install TARGET CONSTRAINTS REQ...
fetch_and_install() {
  local target="$1" cons="$2"; shift 2
  local copt=(); [[ -s $cons ]] && copt=(-c "$cons")
  mkdir -p "$WHEELHOUSE"
  # pip download keeps a same-named file it already has: a pifed wheel left by an older build
  # would shadow the new one's metadata (e.g. an extra added since). Always the fresh one.
  rm -f "$WHEELHOUSE"/pifed-*.whl
  # Offline only when pinned: unpinned, the wheelhouse's stale versions would win.
  if [[ -s $cons ]] && "${PIP[@]}" download "${PIP_Q[@]}" "${PIP_TARGET_OPTS[@]}" --no-index \
       --find-links "$WHEELHOUSE" -d "$WHEELHOUSE" "${copt[@]}" "$@" >/dev/null 2>&1; then
    say "all wheels already in the wheelhouse (offline)"
    # Seen once right after the requirements changed: the offline download passed and the
    # install did not. Fall through to the index, as if the wheelhouse had been short.
    offline_install "$target" "${copt[@]}" "$@" 2>/dev/null && return 0
    warn "offline install failed; downloading from the index"
  fi
  say "pip download (index) -> $WHEELHOUSE"
  quiet_pip "${PIP[@]}" download "${PIP_Q[@]}" "${PIP_TARGET_OPTS[@]}" \
    -d "$WHEELHOUSE" "${copt[@]}" "$@" || return 1
  offline_install "$target" "${copt[@]}" "$@"
}

#   offline_install TARGET [-c CONSTRAINTS] REQ...   (from the wheelhouse only)
offline_install() {
  local target="$1"; shift
  rm -rf "$target.tmp"
  quiet_pip "${PIP[@]}" install "${PIP_Q[@]}" "${PIP_INST_Q[@]}" "${PIP_TARGET_OPTS[@]}" --no-index \
    --find-links "$WHEELHOUSE" --target "$target.tmp" "$@"
}

# ---------------------------------------------------------------- 3. project wheel
step "3/5 build the project wheel from $PROJECT"
rm -rf "$DIST"; mkdir -p "$DIST"
if [[ -n $UV_BIN ]]; then
  say "uv build --wheel"
  (cd "$PROJECT" && "$UV_BIN" build --quiet --wheel -o "$DIST" .)
else
  say "pip wheel --no-deps"
  "${PIP[@]}" wheel "${PIP_Q[@]}" --no-deps -w "$DIST" "$PROJECT"
fi
shopt -s nullglob; wheels=("$DIST"/pifed-*.whl); shopt -u nullglob
[[ ${#wheels[@]} -eq 1 ]] || die "expected one pifed wheel in $DIST, got ${#wheels[@]}"
WHEEL="${wheels[0]}"
OVERRIDE_NAMES=()
if [[ -n ${OVERRIDE// /} ]]; then
  # As if pyproject required these instead (opt-in, to try other versions).
  # shellcheck disable=SC2086
  WHEEL="$("$PY" "$LOCKINFO" override "$WHEEL" "$DIST/override" $OVERRIDE 2>"$DIST/override.log")" \
    || { cat "$DIST/override.log" >&2; die "PIFED_ARM64_OVERRIDE=$OVERRIDE"; }
  sed 's/^lockinfo: /   /' "$DIST/override.log"
  warn "PIFED_ARM64_OVERRIDE: the wheel's requirements are overridden ($OVERRIDE); pyproject.toml is not"
  for r in $OVERRIDE; do OVERRIDE_NAMES+=("$(printf '%s' "${r%%[<>=!~;[ ]*}" | tr 'A-Z_.' 'a-z--')"); done
fi
WHEEL_SHA="$(sha256sum "$WHEEL" | cut -c1-16)"
done_step "$(basename "$WHEEL") sha256:$WHEEL_SHA"

# ---------------------------------------------------------------- 4. edge set
step "4/5 pifed[$EXTRA] for aarch64 -> $SITE"
CONS="$CACHE/constraints.txt"
if [[ $LOCK != none && -f $LOCK ]]; then
  "$PY" "$LOCKINFO" constraints "$LOCK" >"$CONS.new"
  say "pinned to $(realpath --relative-to="$PROJECT" "$LOCK" 2>/dev/null || echo "$LOCK") ($(wc -l <"$CONS.new") pins)"
else
  : >"$CONS.new"
  say "no lock ($LOCK): unpinned resolution, like a plain pip install \".[edge]\""
fi
# An overridden requirement drops its lock pin; PIFED_ARM64_CONSTRAINTS adds pins.
for n in "${OVERRIDE_NAMES[@]}"; do
  grep -v "^$n==" "$CONS.new" >"$CONS.new2" || true; mv "$CONS.new2" "$CONS.new"
done
if [[ -n $EXTRA_CONS ]]; then
  say "extra constraints: $EXTRA_CONS ($(grep -cvE '^\s*(#|$)' "$EXTRA_CONS") lines)"
  grep -vE '^\s*(#|$)' "$EXTRA_CONS" >>"$CONS.new" || true
fi
# Keep a previous nearest-version substitution only while the lock is unchanged.
if [[ -f $CONS.lockhash && "$(cat "$CONS.lockhash")" == "$(hash_of <"$CONS.new")" && -f $CONS ]]; then
  rm -f "$CONS.new"
else
  hash_of <"$CONS.new" >"$CONS.lockhash"
  mv "$CONS.new" "$CONS"
fi
# The dependency set is keyed on the wheel's requirements + the pins; the project's own
# code on the wheel's hash (the project changes far more often than its dependencies).
REQS="$("$PY" "$LOCKINFO" requires "$WHEEL")"
site_key() { printf '%s\n' "v$SETUP_VERSION" "$REQS" "${PIP_TARGET_OPTS[*]}" "$(cat "$CONS")" | hash_of; }
SITE_KEY="$(site_key)"
if [[ ! -s $CONS && $RELEASE == trixie ]]; then
  # Unpinned: resolve against the index every run, but reinstall only when the resolution
  # changed (an emulated reinstall takes ~50 s; the dry run about a third of that).
  say "unpinned: pip install --dry-run (index) to see whether the resolution changed"
  resolved="$(quiet_pip "${PIP[@]}" install "${PIP_Q[@]}" "${PIP_TARGET_OPTS[@]}" --dry-run \
    --ignore-installed --report - "${WHEEL}[$EXTRA]" | "$PY" "$LOCKINFO" pins-of-report)" \
    || resolved="failed-$EPOCHREALTIME"
  SITE_KEY="unpinned-$(printf '%s\n' "$SITE_KEY" "$resolved" | hash_of)"
elif [[ ! -s $CONS ]]; then
  SITE_KEY="unpinned-$EPOCHREALTIME"   # unpinned: always re-resolve
fi
if [[ -d $SITE && "$(cat "$SITE/.pifed-stamp" 2>/dev/null)" == "$SITE_KEY" ]]; then
  if [[ "$(cat "$SITE/.pifed-wheel" 2>/dev/null)" == "$WHEEL_SHA" ]]; then
    done_step "up to date (wheel, its requirements and the pins unchanged)"
  else
    # Same requirements, new project code: swap only the pifed wheel (--no-deps).
    rm -rf "$SITE.pifed"
    quiet_pip "${PIP[@]}" install "${PIP_Q[@]}" "${PIP_INST_Q[@]}" "${PIP_TARGET_OPTS[@]}" \
      --no-index --no-deps --target "$SITE.pifed" "$WHEEL"
    # Read the whole list first: it names the dist-info whose RECORD it reads.
    tops="$("$PY" "$LOCKINFO" toplevel "$SITE" pifed)"
    while read -r top; do [[ -n $top ]] && rm -rf "${SITE:?}/$top"; done <<<"$tops"
    for item in "$SITE.pifed"/* "$SITE.pifed"/.[!.]*; do
      [[ -e $item ]] || continue
      n="$(basename "$item")"
      if [[ $n == bin ]]; then mkdir -p "$SITE/bin"; mv -f "$item"/* "$SITE/bin/"
      else rm -rf "${SITE:?}/$n"; mv "$item" "$SITE/$n"; fi
    done
    rm -rf "$SITE.pifed"
    printf '%s\n' "$WHEEL_SHA" >"$SITE/.pifed-wheel"
    done_step "requirements unchanged: reinstalled only the pifed wheel (--no-deps)"
  fi
else
  if ! fetch_and_install "$SITE" "$CONS" "${WHEEL}[$EXTRA]"; then
    # Some locked version has no aarch64 wheel: find which, take the nearest that has one.
    warn "the locked set does not resolve for aarch64; checking each locked pifed[edge] pin"
    [[ -s $CONS ]] || die "pifed[edge] does not resolve for aarch64 even unpinned"
    : >"$CONS.relaxed"; subst=0
    while read -r pin; do
      name="${pin%%==*}"; ver="${pin#*==}"
      if "${PIP[@]}" download "${PIP_Q[@]}" "${PIP_TARGET_OPTS[@]}" --no-deps \
           -d "$WHEELHOUSE" "$pin" >/dev/null 2>&1; then
        echo "$pin" >>"$CONS.relaxed"; continue
      fi
      # (pip index takes neither -q nor --progress-bar; -q would hide its answer)
      avail="$( { "${PIP[@]}" index versions --disable-pip-version-check "${PIP_TARGET_OPTS[@]}" \
                  "$name" 2>/dev/null || true; } | sed -n 's/^Available versions: //p')"
      [[ -n $avail ]] || die "$name: no aarch64 cp${PYV/./} wheel at any version on the index"
      # shellcheck disable=SC2086
      alt="$("$PY" "$LOCKINFO" nearest "$name" "$ver" $avail)" || die "no aarch64 wheel of $name"
      warn "$name $ver (locked) has NO aarch64 cp${PYV/./} wheel on the index; using nearest: $name $alt"
      echo "$name==$alt" >>"$CONS.relaxed"; subst=1
    done < <("$PY" "$LOCKINFO" closure "$LOCK" pifed edge)
    [[ $subst -eq 1 ]] || die "every locked pifed[edge] pin has an aarch64 wheel, yet the set does not resolve (see pip's error above)"
    # The substitute may need newer deps than the lock's other pins allow (grpcio >= 1.75
    # needs typing-extensions ~= 4.12; the lock has 4.5.0 for TFF): keep only the pins of
    # the locked edge closure, with the substitutions.
    warn "constraints relaxed to the locked pifed[edge] closure: $(paste -sd' ' "$CONS.relaxed")"
    mv "$CONS.relaxed" "$CONS"
    SITE_KEY="$(site_key)"
    fetch_and_install "$SITE" "$CONS" "${WHEEL}[$EXTRA]" || die "pifed[edge] does not install for aarch64"
  fi
  printf '%s\n' "$SITE_KEY" >"$SITE.tmp/.pifed-stamp"
  printf '%s\n' "$WHEEL_SHA" >"$SITE.tmp/.pifed-wheel"
  rm -rf "$SITE"; mv "$SITE.tmp" "$SITE"
  # What was resolved, as pins: PIFED_ARM64_CONSTRAINTS=<this file> makes later runs pinned
  # (offline from the wheelhouse, and skipped while nothing changes).
  "$PY" "$LOCKINFO" report "$SITE" none | awk 'NR>1 && $4!="project" {print $1"=="$2}' >"$CACHE/resolved.txt"
  done_step "installed (pins of this set: $CACHE/resolved.txt)"
fi

# ---------------------------------------------------------------- 5. test tools
step "5/5 test tools ($TEST_REQS) -> $TESTSITE"
TEST_KEY="$(printf '%s\n' "v$SETUP_VERSION" "$TEST_REQS" "${PIP_TARGET_OPTS[*]}" "$(cat "$CONS")" | hash_of)"
if [[ -d $TESTSITE && "$(cat "$TESTSITE/.pifed-stamp" 2>/dev/null)" == "$TEST_KEY" ]]; then
  done_step "up to date"
else
  # shellcheck disable=SC2086
  fetch_and_install "$TESTSITE" "$CONS" $TEST_REQS || die "test tools do not install for aarch64"
  printf '%s\n' "$TEST_KEY" >"$TESTSITE.tmp/.pifed-stamp"
  rm -rf "$TESTSITE"; mv "$TESTSITE.tmp" "$TESTSITE"
  done_step "installed"
fi

# ---------------------------------------------------------------- summary
printf '\n== aarch64 edge set (versus %s)\n' "$(basename "$LOCK")"
"$PY" "$LOCKINFO" report "$SITE" "$LOCK"
gv="$(sed -n 's/^Version: //p' "$SITE"/grpcio-*.dist-info/METADATA 2>/dev/null | head -1)"
gl="$( { grep -A1 '^name = "grpcio"$' "$LOCK" 2>/dev/null || true; } | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)"
if [[ ! -f $LOCK ]]; then say "grpcio: aarch64 wheel ${gv:-missing} (no lock to compare)"
elif [[ -n $gl && $gv == "$gl" ]]; then say "grpcio: aarch64 wheel $gv matches the lock ($gl)"
else warn "grpcio: aarch64 wheel ${gv:-missing} vs lock ${gl:-none}"; fi

mb() { du -sm "$1" | cut -f1; }
printf '\n== sizes (du)\n'
say "edge set (SITE)      $(mb "$SITE") MB   $SITE"
say "test tools           $(mb "$TESTSITE") MB   $TESTSITE"
say "emulated root        $(mb "$ROOT") MB   $ROOT"
say "cached .debs/wheels  $(mb "$DEBS") MB / $(mb "$WHEELHOUSE") MB"
say "largest in SITE: $(cd "$SITE" && du -sm -- * | sort -rn | head -5 | awk '{printf "%s %sMB, ", $2, $1}' | sed 's/, $//')"
rel_env=""; [[ $RELEASE == bookworm ]] || rel_env="PIFED_ARM64_RELEASE=$RELEASE "
printf '\nready in %ss (%s). Try:  %s%s/python %s/smoke.py\n' "$(_ts "$T0")" "$RELEASE" "$rel_env" \
  "$(realpath --relative-to="$PWD" "$HERE" 2>/dev/null || echo "$HERE")" \
  "$(realpath --relative-to="$PWD" "$HERE" 2>/dev/null || echo "$HERE")"
