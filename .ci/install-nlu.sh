#!/usr/bin/env bash
# Make Rasa's Python 3.10 venv and train the NLU model (idempotent, non-interactive).
#
# Fresh Debian 12 + pyenv's 3.10: a few minutes (pip from the pinned set, then about
# 5 min of DIET training on 2 cores). A rerun whose venv matches the pinned
# requirements hash (nlu_data/requirements-rasa.txt) and whose model matches the
# training-data hash does nothing and takes a few seconds.
#
# Environment (all optional):
#   KEFU_RASA_VENV    Rasa venv         (default var/rasa/venv in the work tree)
#   KEFU_RASA_MODELS  trained models    (default var/rasa/models)
#     CI clones afresh each run: point both outside the clone (e.g. under
#     /var/cache/kefu) and export them to the test run too, to reuse venv and model.
#   KEFU_RASA_PYTHON  a python3.10 to build the venv from (default: PATH, pyenv, uv)
#   KEFU_PYTHON       the gateway's Python 3.11+ with aiohttp and PyYAML
#                     (default .venv/bin/python, then python3)
#   KEFU_NLU_EVAL=1   also run the held-out evaluation (trains a second model)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

py=""
for candidate in "${KEFU_PYTHON:-}" .venv/bin/python python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys, aiohttp, yaml; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        py="$candidate"
        break
    fi
done
if [[ -z "$py" ]]; then
    echo "install-nlu: no gateway Python 3.11+ with aiohttp and PyYAML found;" >&2
    echo "install-nlu: install the gateway first (pip install -e '.[test]') or set KEFU_PYTHON." >&2
    exit 1
fi

start=$SECONDS
"$py" -m bot.nlu.cli install
"$py" -m bot.nlu.cli train
if [[ "${KEFU_NLU_EVAL:-0}" == 1 ]]; then
    "$py" -m bot.nlu.cli test
fi
echo "install-nlu: done in $((SECONDS - start))s"
