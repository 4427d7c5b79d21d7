#!/bin/sh
# The container's entry point (Dockerfile): `illhub schedule` and `illhub serve --public`
# side by side (and `illhub backup` once a day), both stopped by the SIGTERM of `docker stop`. The first start harvests
# before serving (the scheduler catches up a run never made); later starts serve at once.
# With arguments, runs them instead: `docker run IMAGE illhub status`.
set -u
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
db="${ILLHUB_DB:-data/illhub.db}"
port="${ILLHUB_PORT:-8001}"
schedule_pid=""
serve_pid=""
backup_pid=""
stop() {
    trap - TERM INT
    echo "illhub container: stopping" >&2
    [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null
    [ -n "$schedule_pid" ] && kill -TERM "$schedule_pid" 2>/dev/null
    [ -n "$backup_pid" ] && kill -TERM "$backup_pid" 2>/dev/null
    wait
    exit "${1:-0}"
}
trap stop TERM INT
# shellcheck disable=SC2086 # ILLHUB_SCHEDULE_ARGS holds several options
illhub schedule ${ILLHUB_SCHEDULE_ARGS:-} &
schedule_pid=$!
# Serve once the first harvest has finished (on later starts, at once).
until [ -e "$db" ] && ! illhub status --db "$db" 2>/dev/null | grep -q '^last harvest: never'; do
    if ! kill -0 "$schedule_pid" 2>/dev/null; then
        echo "illhub container: 'illhub schedule' stopped before the first harvest finished" >&2
        exit 1
    fi
    sleep 2
done
# shellcheck disable=SC2086
illhub serve --public --host 0.0.0.0 --port "$port" --db "$db" ${ILLHUB_SERVE_ARGS:-} &
serve_pid=$!
# A checked copy of the catalog once a day (in backups/ beside it, the newest 7 kept).
(while sleep "${ILLHUB_BACKUP_EVERY:-86400}"; do illhub backup --db "$db"; done) &
backup_pid=$!
# Either one ending ends the container (a restart policy starts it again).
while kill -0 "$schedule_pid" 2>/dev/null && kill -0 "$serve_pid" 2>/dev/null; do
    sleep 2
done
echo "illhub container: a process ended; stopping the other" >&2
stop 1
