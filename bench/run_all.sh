#!/usr/bin/env bash
# Run every benchmark in turn, then (full sizes only) bench/report.py for the README table and plots.
#   bash bench/run_all.sh            # full sizes (an hour or more on 2 cores: traffic.py and peers.py are most of it)
#   bash bench/run_all.sh --smoke    # tiny sizes: checks that every script works (CI; peers.py makes its
#                                    # virtualenvs the first time, bench/.peers/)
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
status=0
for bench in throughput traffic latency publishing isolation logs_scale automations peers; do
  echo "=== bench/$bench.py $*"
  "$PY" "bench/$bench.py" "$@" || status=1
done
if [[ " $* " != *" --smoke "* ]]; then
  "$PY" bench/report.py || status=1
fi
exit $status
