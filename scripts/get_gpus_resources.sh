#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints the GPU addresses
# this executor may use, in the JSON form Spark's resource scheduler expects.
addrs=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | sed -e ':a' -e 'N' -e'$!ba' -e 's/\n/","/g')
echo "{\"name\": \"gpu\", \"addresses\": [\"${addrs}\"]}"
