#!/usr/bin/env bash
# Install Kefu (first time only), prepare its models, and start it. Without a kefu.yml it
# runs the embedded demo: its own Redis and MongoDB-protocol server under ./var, and a
# demo WeChat account you can talk to with
#   .venv/bin/kefu simulate wechat --account demo --text 你好
# On the first run `kefu run` answers at once with its keyword layer while it downloads
# Rasa (a 2.7 GB Python 3.10 environment) and trains the NLU model in the background
# (progress in its log), then switches to the model without a restart. Later runs reuse
# both. KEFU_SKIP_NLU=1 runs without NLU (no Rasa, no training).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh embedded,speech
.venv/bin/kefu speech install \
  || echo "speech: models not prepared; voice notes are acknowledged, not transcribed" >&2
exec .venv/bin/kefu run "$@"
