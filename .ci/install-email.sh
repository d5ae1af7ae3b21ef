#!/usr/bin/env bash
# What the email and DingTalk channel tests and benches need: dovecot (a real IMAP
# server started by the tests), redis-server, wrk/taskset for bench_dingtalk.py, and the
# Python packages. Idempotent and non-interactive; apt-get update only when a package
# is missing.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" dovecot-imapd redis-server wrk util-linux
# The tests start their own dovecot from a generated config; the packaged service is
# not needed (and would hold port 143 on a developer machine).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; then
  systemctl stop dovecot || true
fi

PYTHON="${PYTHON:-python3}"
if [[ -x "$(dirname "$0")/../.venv/bin/python" && -z "${PYTHON_SET:-}" ]]; then
  PYTHON="$(dirname "$0")/../.venv/bin/python"
fi
"$PYTHON" -m pip install -q \
  "aioimaplib==2.0.3" \
  "aiosmtplib==5.1.3" \
  "aiosmtpd==1.4.6" \
  "dingtalk-stream==0.24.3"
