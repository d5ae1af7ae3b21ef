#!/usr/bin/env bash
# Install Kefu (first time only) and start it. Without a kefu.yml it runs the embedded
# demo: its own Redis and MongoDB-protocol server under ./var, and a demo WeChat account
# you can talk to with `.venv/bin/kefu simulate wechat --account demo --text 你好`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh embedded
exec .venv/bin/kefu run "$@"
