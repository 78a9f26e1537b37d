# Sourced by demo.sh and demo-multiparty.sh (POSIX sh), after bin, out and csv
# are set: the work directory and its cleanup, timing and size helpers, the
# table (csv, generated when empty; rows = its data rows), the server on a free
# loopback port (url, server_pid; extra serve options in serve_args), has COL,
# and the statistics both demos ask for (stats).
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/hestat-demo.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f s", b - a }'; }
size() { awk -v b="$(wc -c < "$1")" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }

if [ -z "$csv" ]; then
    csv=$work/table.csv
    "$bin/hestat-client" sample --rows 4240 --seed 1 --out "$csv"
    echo "table: generated, Framingham schema, 4240 rows ($csv)"
else
    echo "table: $csv"
fi
rows=$(($(wc -l < "$csv") - 1))

# The server, on a free loopback port with a temporary spool.
start_server() {
    "$bin/hestat-server" serve --listen 127.0.0.1:0 --spool "$work/spool" ${serve_args:-} > "$work/server.log" 2>&1 &
    server_pid=$!
    url=
    for _ in $(seq 1 100); do
        url=$(grep -o 'http://[0-9.:]*' "$work/server.log" 2>/dev/null | head -n 1 || true)
        [ -n "$url" ] && break
        sleep 0.05
    done
    [ -n "$url" ] || { echo "demo: the server did not start"; cat "$work/server.log"; exit 1; }
    echo "server: $url (spool $work/spool)"
}

# With the Framingham columns: histograms, a regression, a chi-square table and
# a Welch t-test with p-values (report.html shows them).
has() { head -n 1 "$csv" | tr -d '\r"' | tr ',' '\n' | grep -qx "$1"; }
stats=
if has age && has sysBP && has BMI; then stats="mean,var,corr,hist:age:30:40:50:60:70,regress:sysBP~age+BMI"; fi
if [ -n "$stats" ] && has education && has TenYearCHD; then
    stats="$stats,table:education:TenYearCHD,ttest:sysBP:TenYearCHD"
fi
