#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Linux machine: system packages, the virtualenv with the pinned
# stack (requirements/lock.txt), Horovod (built once, wheel cached), and this project (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
python=${PYTHON:-python3.11}

apt_install() {  # install Debian packages when missing (needs root; otherwise say what is missing)
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    (apt-get install -y -q --no-install-recommends "${missing[@]}" || { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }) >/dev/null
  else
    echo "setup: please install Debian packages: ${missing[*]}" >&2; exit 1
  fi
}

if ! command -v java >/dev/null || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  apt_install openjdk-17-jre-headless
fi
command -v cmake >/dev/null || apt_install cmake
apt_install dataset-fashion-mnist  # Fashion-MNIST IDX files in /usr/share/datasets/fashion-mnist
apt_install docker-compose  # validates docker-compose.yml in the tests (no Docker engine needed)
apt_install chromium  # the browser tests (tests/browser: Playwright drives this Chromium; it never downloads one)

command -v "$python" >/dev/null || python=python3
"$python" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' \
  || { echo "setup: Python 3.11 or 3.12 is required (the lock and the Horovod build are tested on them); set PYTHON=..." >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# --upgrade: a new venv's bundled pip (23.2) already satisfies "pip<25"; 24.3 resolves 2.3x faster here.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip<25"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements/lock.txt
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements/no-deps.txt
bash scripts/build_horovod.sh "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
"$venv/bin/python" scripts/build_class_archive.py  # Spark's classes for the driver JVM's start (about a minute)
echo "setup: ready ($("$venv/bin/python" --version), $(java -version 2>&1 | head -1))"
