#!/usr/bin/env bash
# Install Kefu (first time only), prepare its models, and start it. Without a kefu.yml it
# runs the embedded demo: its own Redis and MongoDB-protocol server under ./var, and a
# demo WeChat account you can talk to with
#   .venv/bin/kefu simulate wechat --account demo --text 你好
# The first run downloads Rasa (a 2.7 GB Python 3.10 environment) and trains the NLU
# model: several minutes. Later runs reuse both. KEFU_SKIP_NLU=1 starts without NLU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh embedded,speech
.venv/bin/kefu speech install \
  || echo "speech: models not prepared; voice notes are acknowledged, not transcribed" >&2
if [ -z "${KEFU_SKIP_NLU:-}" ]; then
  { .venv/bin/kefu nlu install && .venv/bin/kefu nlu train; } \
    || echo "NLU not prepared (see above): the bot runs without understanding until \`kefu nlu install && kefu nlu train\` succeeds" >&2
fi
exec .venv/bin/kefu run "$@"
