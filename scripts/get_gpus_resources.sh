#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript, and
# spark.worker.resource.gpu.discoveryScript for standalone workers): prints the GPU addresses this host
# may use, in the JSON form Spark's resource scheduler expects, e.g. {"name": "gpu", "addresses": ["0","1"]}.
# When no GPU is visible (nvidia-smi missing, failing, or listing none) it prints one line on stderr and
# exits 1, so Spark (and spark_ml_pipeline.runtime.session.resolve_device) fail instead of using a fake GPU.
set -uo pipefail

fail() { echo "get_gpus_resources.sh: no GPU visible: $*" >&2; exit 1; }

query=(nvidia-smi --query-gpu=index --format=csv,noheader)
command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi is not on PATH"
errors=$(mktemp) || fail "cannot create a temporary file"
trap 'rm -f "$errors"' EXIT
if ! listing=$(timeout 60 "${query[@]}" 2>"$errors"); then
  fail "'${query[*]}' failed: $(tr '\n' ' ' <"$errors" | head -c 300)"
fi

addresses=()
while IFS= read -r line; do
  line=${line//[[:space:]]/}
  [ -z "$line" ] && continue
  [[ $line =~ ^[0-9]+$ ]] || fail "'${query[*]}' printed an unexpected line: $line"
  addresses+=("\"$line\"")
done <<<"$listing"
[ ${#addresses[@]} -gt 0 ] || fail "'${query[*]}' lists no GPU"

(IFS=,; echo "{\"name\": \"gpu\", \"addresses\": [${addresses[*]}]}")
