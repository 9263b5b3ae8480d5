#!/usr/bin/env bash
# Install Horovod 0.28.1 (TensorFlow + Gloo, CPU) into the given venv, building its wheel at most once.
# The wheel is cached under $SML_CACHE_DIR keyed by the pins that affect the ABI (Python, TensorFlow,
# numpy), so a rebuild happens only when those change. Horovod's last release predates Keras 3: it needs
# TF 2.15 (Keras 2) and setuptools<70; pip's cmake 4 breaks gloo, so the system cmake (3.2x) is used.
set -euo pipefail
venv=${1:?usage: build_horovod.sh VENV}
py="$venv/bin/python"
version=0.28.1
if "$py" -c "import horovod, sys; sys.exit(horovod.__version__ != '$version')" 2>/dev/null; then
  exit 0
fi
key=$("$py" - <<'PY'
import hashlib, sys, importlib.metadata as md
pins = [sys.version.split()[0], md.version("tensorflow-cpu"), md.version("numpy")]
print(hashlib.sha256(" ".join(pins).encode()).hexdigest()[:16])
PY
)
cache="${SML_CACHE_DIR:-$HOME/.cache/spark-ml-pipeline}/wheels/horovod-$version-$key"
if ! ls "$cache"/horovod-*.whl >/dev/null 2>&1; then
  command -v cmake >/dev/null || { echo "build_horovod: cmake is required (apt-get install cmake)" >&2; exit 1; }
  echo "Building Horovod $version (once; cached in $cache) ..."
  tmp=$(mktemp -d "${cache}.tmp.XXXX" 2>/dev/null || { mkdir -p "$(dirname "$cache")"; mktemp -d "${cache}.tmp.XXXX"; })
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITH_GLOO=1 HOROVOD_CMAKE="$(command -v cmake)" MAKEFLAGS="-j$(nproc)" \
    "$venv/bin/pip" wheel --no-build-isolation --no-deps "horovod==$version" -w "$tmp"
  rm -rf "$cache" && mv "$tmp" "$cache"  # publish the cache entry atomically
fi
"$venv/bin/pip" install --no-deps "$cache"/horovod-*.whl
"$py" -c "import horovod.tensorflow, horovod.spark; print('horovod', horovod.__version__, 'ok')"
