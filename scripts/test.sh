#!/usr/bin/env bash
# Install everything the tests need (first time only), then run the whole suite with pytest.
# The tests start their own Redis, MongoDB-protocol, Rasa, IMAP and SMTP servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
. .venv/bin/activate
for part in speech nlu email compose browser; do
  if [ -f ".ci/install-$part.sh" ]; then
    echo "== preparing $part"
    bash ".ci/install-$part.sh"
  fi
done
exec python -m pytest -q "$@"
