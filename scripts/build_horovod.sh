#!/usr/bin/env bash
# Install Horovod 0.28.1 (TensorFlow + Gloo) into the given venv, building its wheel at most once.
#   build_horovod.sh VENV                 build (or reuse the cached wheel) and install
#   build_horovod.sh --print-flags VENV   print the flavour, why, the cache entry and the build variables
# CPU only, as before, unless CUDA is present (nvcc on PATH, or CUDA_HOME set) AND the venv holds
# TensorFlow's CUDA build (`tensorflow`, from requirements/gpu-lock.txt): then the wheel is built with
# HOROVOD_GPU_OPERATIONS=NCCL (allreduce/allgather/broadcast on the GPU through NCCL), passing
# HOROVOD_CUDA_HOME (default: $CUDA_HOME) and HOROVOD_NCCL_HOME (default: $NCCL_HOME) when set.
# nvcc alone is not enough: the development machines carry a CUDA toolkit, but no GPU and tensorflow-cpu,
# with which Horovod's GPU ops cannot work. SML_HOROVOD_GPU=0 forces the CPU build.
# The wheel is cached under $SML_CACHE_DIR keyed by what affects the build: Python, TensorFlow (distribution
# and version), numpy and the flavour (cpu, or nccl-cuda<release>), so a rebuild happens only when those
# change; the CPU build with tensorflow-cpu keeps its original key and cache entry. Horovod's last release
# predates Keras 3: it was made for TF 2.15 (Keras 2); newer TensorFlow needs its source patched (the patches
# below, chosen by TensorFlow's version, named in the cache key; none for 2.15) and TF_USE_LEGACY_KERAS=1 with
# tf-keras at run time. It needs setuptools<70; pip's cmake 4 breaks gloo, so the system cmake (3.2x) is used.
set -euo pipefail
print_only=0
if [ "${1:-}" = --print-flags ]; then print_only=1; shift; fi
venv=${1:?usage: build_horovod.sh [--print-flags] VENV}
py="$venv/bin/python"
version=0.28.1

# Python, the TensorFlow distribution in the venv (exactly one of tensorflow / tensorflow-cpu), numpy.
read -r py_version tf_dist numpy_version < <("$py" - <<'PY'
import sys, importlib.metadata as md
found = []
for name in ("tensorflow", "tensorflow-cpu"):
    try:
        found.append(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
if len(found) != 1:
    sys.exit(f"build_horovod: expected exactly one of tensorflow / tensorflow-cpu in this venv, found "
             f"{', '.join(found) or 'none'} (install requirements/lock.txt or requirements/gpu-lock.txt, not both)")
print(sys.version.split()[0], found[0], md.version("numpy"))
PY
) && [ -n "${tf_dist:-}" ] || exit 1

# --- what to build ----------------------------------------------------------------------------------
nvcc=$(command -v nvcc || true)
if [ -z "$nvcc" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then nvcc="$CUDA_HOME/bin/nvcc"; fi
flags=(HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITHOUT_MPI=1
       HOROVOD_WITH_GLOO=1)
if [ -z "$nvcc" ] && [ -z "${CUDA_HOME:-}" ]; then
  flavour=cpu reason="no CUDA: no nvcc on PATH, CUDA_HOME unset"
elif [ "${SML_HOROVOD_GPU:-auto}" = 0 ]; then
  flavour=cpu reason="SML_HOROVOD_GPU=0"
elif [[ $tf_dist != tensorflow==* ]]; then
  flavour=cpu reason="CUDA found but the venv has $tf_dist (requirements/gpu-lock.txt has the CUDA build)"
else
  cuda_release=unknown
  if [ -n "$nvcc" ]; then
    cuda_release=$("$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p' | head -1)
    cuda_release=${cuda_release:-unknown}
  fi
  flavour="nccl-cuda$cuda_release" reason="CUDA found (${nvcc:-CUDA_HOME=${CUDA_HOME:-}}) and $tf_dist"
  flags+=(HOROVOD_GPU_OPERATIONS=NCCL)
  cuda_home=${HOROVOD_CUDA_HOME:-${CUDA_HOME:-}}
  nccl_home=${HOROVOD_NCCL_HOME:-${NCCL_HOME:-}}
  if [ -n "$cuda_home" ]; then flags+=("HOROVOD_CUDA_HOME=$cuda_home"); fi
  if [ -n "$nccl_home" ]; then flags+=("HOROVOD_NCCL_HOME=$nccl_home"); fi
fi

# --- patches to Horovod's source, for TensorFlow newer than the 2.15 it was released for --------------------
tf_version=${tf_dist#*==}
at_least() { [ "$(printf '%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }  # version $1 >= $2
patches=()
if at_least "$tf_version" 2.16; then
  # horovod.tensorflow.keras takes its backend from `import keras`, which on TF 2.16+ is Keras 3 even when tf.keras
  # is tf-keras (TF_USE_LEGACY_KERAS=1): MetricAverageCallback then fails (Keras 3's backend has no `constant`).
  # The patch takes tf.keras's backend, as the module already imports tf.keras.
  patches+=(keras-backend)
fi
if at_least "$tf_version" 2.19; then
  # TF 2.19's pip package no longer ships the LLVM headers (llvm/ADT/ArrayRef.h) that the XLA headers included by
  # horovod/tensorflow/xla_mpi_ops.cc need. The file's XLA ops exist only in GPU builds (all its code is under
  # HAVE_GPU) and run only with HOROVOD_ENABLE_XLA_OPS=1 and an XLA-compiled model, which nothing here uses:
  # it is left out of the build.
  patches+=(no-xla-ops)
fi

patch_source() {  # apply "${patches[@]}" to the unpacked sdist $1; a patch that no longer matches is an error
  local dir=$1 patch file
  for patch in "${patches[@]}"; do
    case $patch in
      keras-backend)
        for file in horovod/tensorflow/keras/__init__.py horovod/tensorflow/keras/callbacks.py; do
          grep -q '^    from keras import backend as K$' "$dir/$file" && grep -q '^from tensorflow import keras$' "$dir/$file" \
            || { echo "build_horovod: patch $patch does not apply to $file" >&2; return 1; }
          sed -i 's/^    from keras import backend as K$/    K = keras.backend  # tf.keras: build_horovod.sh, keras-backend/' \
            "$dir/$file"
        done ;;
      no-xla-ops)
        file=horovod/tensorflow/CMakeLists.txt
        grep -q 'xla_mpi_ops\.cc' "$dir/$file" || { echo "build_horovod: patch $patch does not apply to $file" >&2; return 1; }
        sed -i '/xla_mpi_ops\.cc/d' "$dir/$file" ;;
    esac
  done
}

cache_root="${SML_CACHE_DIR:-$HOME/.cache/spark-ml-pipeline}/wheels"
patched=${patches[*]:+ patches: ${patches[*]}}  # empty without patches: the keys below stay what they were
if [ "$flavour" = cpu ] && [[ $tf_dist == tensorflow-cpu==* ]]; then  # the original key: old entries stay valid
  key=$(printf '%s' "$py_version ${tf_dist#tensorflow-cpu==} $numpy_version$patched" | sha256sum | cut -c1-16)
  cache="$cache_root/horovod-$version-$key"
else
  key=$(printf '%s' "$py_version $tf_dist $numpy_version $flavour$patched" | sha256sum | cut -c1-16)
  cache="$cache_root/horovod-$version-$flavour-$key"
fi

if [ "$print_only" = 1 ]; then
  echo "flavour=$flavour"
  echo "reason=$reason"
  echo "cache=$cache"
  echo "patches=${patches[*]:-none}"
  printf '%s\n' "${flags[@]}"
  exit 0
fi

# Importing horovod.tensorflow loads its op library: a Horovod built against another TensorFlow than the venv's
# now holds fails there (Horovod's version check, or an undefined symbol) and is rebuilt or reinstalled.
installed_check="import horovod, sys, horovod.tensorflow; sys.exit(horovod.__version__ != '$version')"
if [ "$flavour" != cpu ]; then  # a CPU-only Horovod already installed is replaced by the NCCL build
  installed_check="import horovod, sys, horovod.tensorflow as hvd; sys.exit(horovod.__version__ != '$version' or not hvd.nccl_built())"
fi
if "$py" -c "$installed_check" 2>/dev/null; then
  exit 0
fi
if ! ls "$cache"/horovod-*.whl >/dev/null 2>&1; then
  command -v cmake >/dev/null || { echo "build_horovod: cmake is required (apt-get install cmake)" >&2; exit 1; }
  echo "Building Horovod $version ($flavour: $reason; once; cached in $cache) ..."
  tmp=$(mktemp -d "${cache}.tmp.XXXX" 2>/dev/null || { mkdir -p "$(dirname "$cache")"; mktemp -d "${cache}.tmp.XXXX"; })
  source="horovod==$version"
  if [ ${#patches[@]} -gt 0 ]; then  # the sdist, unpacked and patched, outside the cache entry
    src=$(mktemp -d)
    trap 'rm -rf "$src"' EXIT
    "$venv/bin/pip" download -q --no-cache-dir --no-deps --no-binary :all: "horovod==$version" -d "$src"
    tar -xzf "$src/horovod-$version.tar.gz" -C "$src"
    source="$src/horovod-$version"
    echo "Patching Horovod's source: ${patches[*]}"
    patch_source "$source"
  fi
  # --no-cache-dir: pip's own wheel cache keys a wheel it built from an sdist by the sdist alone, so without it
  # a Horovod built earlier against another TensorFlow (or numpy) is handed back as if just built.
  env "${flags[@]}" HOROVOD_CMAKE="$(command -v cmake)" MAKEFLAGS="-j$(nproc)" \
    "$venv/bin/pip" wheel --no-cache-dir --no-build-isolation --no-deps "$source" -w "$tmp"
  rm -rf "$cache" && mv "$tmp" "$cache"  # publish the cache entry atomically
fi
"$venv/bin/pip" install --no-deps --force-reinstall "$cache"/horovod-*.whl
"$py" -c "import horovod, horovod.tensorflow as hvd, horovod.spark
print('horovod', horovod.__version__, 'ok', '(NCCL GPU operations)' if hvd.nccl_built() else '(CPU)')"
