#!/bin/sh
# One step of the compose study (compose.yaml), run inside the hestat image:
#   server           hestat-server serve until the analyst is done (or a step failed)
#   analyst-keys     keygen (the only secret key, in the analyst's volume), publish the study
#   contributor N    encrypt and upload half N (1 or 2) of the table
#   analyst          fetch the statistics, decrypt, write /out/decrypted_results.csv
# The table: /data/table.csv when mounted, else the generated one (same seed in
# every container, so each contributor can take its half).
set -eu
role=${1:?role}
C=hestat-client
srv=${HESTAT_SERVER:-http://server:8750}
tok=${HESTAT_TOKEN:-/run/secrets/hestat_token}

table() {
    if [ -f /data/table.csv ]; then cp /data/table.csv "$1"
    else $C sample --rows "${HESTAT_ROWS:-4240}" --seed 1 --out "$1"; fi
}
# A failed step ends the study: the server stops instead of waiting forever.
on_exit() {
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "compose-step: $role failed (exit $rc)" >&2
        touch /control/done 2>/dev/null || true
    fi
    exit "$rc"
}

case $role in
server)
    rm -f /control/done
    hestat-server serve --listen 0.0.0.0:8750 --spool /var/lib/hestat/spool --token-file "$tok" &
    pid=$!
    trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
    while [ ! -e /control/done ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid"
    ;;
analyst-keys)
    trap on_exit EXIT
    table /tmp/table.csv
    $C keygen --schema /tmp/table.csv --keys /analyst/keys --force
    cp /analyst/keys/study.hst /public/study.hst
    $C submit --server "$srv" --token-file "$tok" --study /public/study.hst | sed -n 's/^study //p' > /public/study-id
    test -s /public/study-id
    echo "analyst: study $(cat /public/study-id) published"
    ;;
contributor)
    trap on_exit EXIT
    n=${2:?contributor number}
    table /tmp/table.csv
    rows=$(($(wc -l < /tmp/table.csv) - 1))
    half=$((rows / 2))
    if [ "$n" = 1 ]; then head -n $((half + 1)) /tmp/table.csv > /tmp/mine.csv
    else { head -n 1 /tmp/table.csv; tail -n +$((half + 2)) /tmp/table.csv; } > /tmp/mine.csv; fi
    $C encrypt --study /public/study.hst --in /tmp/mine.csv --out /tmp/mine.hst
    $C submit --server "$srv" --token-file "$tok" --study /public/study.hst --study-id "$(cat /public/study-id)" /tmp/mine.hst
    ;;
analyst)
    trap 'rc=$?; touch /control/done; exit $rc' EXIT
    table /tmp/table.csv
    $C fetch --server "$srv" --token-file "$tok" --study-id "$(cat /public/study-id)" --out /analyst/result.hst
    $C decrypt --keys /analyst/keys --in /analyst/result.hst --out /out/decrypted_results.csv --compare /tmp/table.csv --print
    ;;
*)
    echo "compose-step: unknown role $role" >&2
    exit 2
    ;;
esac
