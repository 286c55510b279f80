#!/usr/bin/env bash
# Run every benchmark in turn, then (full sizes only) bench/report.py for the README table and plots.
#   bash bench/run_all.sh            # full sizes (~12 min on 2 cores)
#   bash bench/run_all.sh --smoke    # tiny sizes: checks that every script works (CI)
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
status=0
for bench in throughput latency publishing isolation logs_scale automations; do
  echo "=== bench/$bench.py $*"
  "$PY" "bench/$bench.py" "$@" || status=1
done
if [[ " $* " != *" --smoke "* ]]; then
  "$PY" bench/report.py || status=1
fi
exit $status
