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
# Paths given: one pytest run over them. Otherwise one pytest process per test folder, so
# that what a folder's gateways and models leave in memory is returned before the next,
# except that the folders which talk to the real Rasa server share one process: the
# server starts once per process (tests/rasa.py), and each start costs about 40 s.
# (A path is an argument naming a file or folder, with or without a ``::test`` suffix; an
# option's value such as ``-p no:cacheprovider`` is not one.)
for arg in "$@"; do
  case "$arg" in -*) continue ;; esac
  if [ -e "${arg%%::*}" ]; then exec python -m pytest -q "$@"; fi
done
with_rasa=()
runs=()
for dir in tests/*/; do
  ls "$dir"test_*.py >/dev/null 2>&1 || continue
  if grep -q "rasa_url" "$dir"*.py; then with_rasa+=("$dir"); else runs+=("$dir"); fi
done
failed=()
run() {
  echo "== $*"
  python -m pytest -q "${options[@]}" "$@" || { rc=$?; [ "$rc" = 5 ] || failed+=("$*"); }
}
options=("$@")
[ ${#with_rasa[@]} -gt 0 ] && run "${with_rasa[@]}"
for dir in "${runs[@]}"; do run "$dir"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed in: ${failed[*]}" >&2
  exit 1
fi
echo "all test folders passed"
