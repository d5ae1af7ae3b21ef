#!/usr/bin/env bash
# What the console's browser tests need: Debian's chromium (driven by the PyPI playwright
# package through executable_path; `playwright install` is never run, nothing is
# downloaded), a CJK font so that headless screenshots and the portal's PDF summaries show
# Chinese text, and poppler's pdftotext, with which the portal tests read those PDFs.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" chromium fonts-noto-cjk poppler-utils

PYTHON="${PYTHON:-python3}"
if [[ -x "$(dirname "$0")/../.venv/bin/python" && -z "${PYTHON_SET:-}" ]]; then
  PYTHON="$(dirname "$0")/../.venv/bin/python"
fi
"$PYTHON" -m pip install -q "playwright==1.65.3"
