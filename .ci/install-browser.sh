#!/usr/bin/env bash
# What the console's browser tests need: Debian's chromium (driven by the PyPI playwright
# package through executable_path; `playwright install` is never run, nothing is
# downloaded) and a CJK font so that headless screenshots show Chinese text.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" chromium fonts-noto-cjk

PYTHON="${PYTHON:-python3}"
if [[ -x "$(dirname "$0")/../.venv/bin/python" && -z "${PYTHON_SET:-}" ]]; then
  PYTHON="$(dirname "$0")/../.venv/bin/python"
fi
"$PYTHON" -m pip install -q "playwright==1.65.3"
