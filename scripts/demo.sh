#!/bin/sh
# make demo: the whole service on this machine, as the original project did it
# with two containers and FTP, done properly:
#   the server starts on a free loopback port with a temporary spool;
#   the analyst creates keys and publishes the study;
#   two contributors encrypt their halves of the table and upload them;
#   the analyst asks for the statistics, downloads and decrypts them, and
#   compares them with the plaintext ones; the server stops.
# usage: demo.sh BIN_DIR OUT_DIR [CSV]
set -eu
bin=$1
out=$2
csv=${3:-}
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
size() { awk -v b="$(wc -c < "$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

if [ -z "$csv" ]; then
    csv=$work/table.csv
    "$bin/hestat-client" sample --rows 4240 --seed 1 --out "$csv"
    echo "table: generated, Framingham schema, 4240 rows ($csv)"
else
    echo "table: $csv"
fi
rows=$(($(wc -l < "$csv") - 1))
half=$((rows / 2))
head -n $((half + 1)) "$csv" > "$work/part1.csv"
{ head -n 1 "$csv"; tail -n +$((half + 2)) "$csv"; } > "$work/part2.csv"

t0=$(now)
"$bin/hestat-server" serve --listen 127.0.0.1:0 --spool "$work/spool" > "$work/server.log" 2>&1 &
server_pid=$!
url=
for _ in $(seq 1 100); do
    url=$(grep -o 'http://[0-9.:]*' "$work/server.log" 2>/dev/null | head -n 1 || true)
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { echo "demo: the server did not start"; cat "$work/server.log"; exit 1; }
echo "server: $url (spool $work/spool)"

# With the Framingham columns, histograms, a regression and tests too (report.html shows them).
has() { head -n 1 "$csv" | tr -d '\r"' | tr ',' '\n' | grep -qx "$1"; }
stats=
if has age && has sysBP && has BMI; then stats="mean,var,corr,hist:age:30:40:50:60:70,regress:sysBP~age+BMI"; fi
# ... and a chi-square table and a Welch t-test with p-values.
if [ -n "$stats" ] && has education && has TenYearCHD; then
    stats="$stats,table:education:TenYearCHD,ttest:sysBP:TenYearCHD"
fi

t1=$(now)
"$bin/hestat-client" keygen --schema "$csv" --keys "$work/keys" ${stats:+--stats "$stats"}
t2=$(now)
"$bin/hestat-client" encrypt --study "$work/keys/study.hst" --in "$work/part1.csv" --out "$work/part1.hst"
"$bin/hestat-client" encrypt --study "$work/keys/study.hst" --in "$work/part2.csv" --out "$work/part2.hst"
t3=$(now)
study=$("$bin/hestat-client" submit --server "$url" --study "$work/keys/study.hst" "$work/part1.hst" | sed -n 's/^study //p')
"$bin/hestat-client" submit --server "$url" --study "$work/keys/study.hst" --study-id "$study" "$work/part2.hst" > /dev/null
t4=$(now)
"$bin/hestat-client" fetch --server "$url" --study-id "$study" --stats all --out "$work/result.hst"
t5=$(now)
"$bin/hestat-client" decrypt --keys "$work/keys" --in "$work/result.hst" --out "$out/decrypted_results.csv" \
    --compare "$csv" --print --html "$out/report.html" ${stats:+--stats "$stats"}
t6=$(now)
echo
echo "phases: keygen $(elapsed "$t1" "$t2") | encrypt (2 contributors) $(elapsed "$t2" "$t3") |" \
     "upload $(elapsed "$t3" "$t4") | compute + download $(elapsed "$t4" "$t5") | decrypt $(elapsed "$t5" "$t6")"
echo "uploads: study $(size "$work/keys/study.hst") (keys and schema), tables $(size "$work/part1.hst") +" \
     "$(size "$work/part2.hst"); result $(size "$work/result.hst")"
echo "decrypted statistics: $out/decrypted_results.csv, as a page: $out/report.html"
