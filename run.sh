#!/usr/bin/env bash
# Serve tiledesk-hooks on this machine: migrate, seed the demo, then the web server and a django-q2
# worker together. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python
PORT="${PORT:-8000}"
export HOOKS_ALLOW_PRIVATE_TARGETS="${HOOKS_ALLOW_PRIVATE_TARGETS:-1}"  # local demos post to localhost
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput -v0
BASE_URL="http://127.0.0.1:$PORT" $PY manage.py seed_demo

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT
$PY manage.py qcluster &
pids+=($!)
$PY manage.py runserver "127.0.0.1:$PORT" --noreload &
pids+=($!)
wait -n
