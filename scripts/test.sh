#!/usr/bin/env bash
# Install facemonitor with its test tools, the train extra (PyTorch CPU build, scikit-learn) and the cohort
# extra (Ray) into .venv
# (first time only), Debian's Chromium for the browser tests when it is missing (as root, or with sudo),
# and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
FACEMONITOR_EXTRAS=dev,train,cohort bash scripts/install.sh
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo -n"
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests" >&2
    { $sudo_cmd apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q chromium; } \
      >/tmp/facemonitor-apt.log 2>&1 || echo "could not install chromium (see /tmp/facemonitor-apt.log); browser tests will skip" >&2
  fi
fi
# one worker per core (-n auto), each test file on one worker so its module fixtures are made once
exec .venv/bin/python -m pytest -q -n auto --dist loadfile "$@"
