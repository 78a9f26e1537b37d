#!/bin/sh
# make demo-multiparty: make demo's study with three data parties, none of
# whom (nor the analyst, nor the server) can decrypt anyone's rows:
#   the server starts on a free loopback port with a temporary spool;
#   the analyst makes a draft (schema, 3 parties, a public seed, the
#   analyst's own public key) and uploads it;
#   each party makes its secret share (kept in its own directory, 0600) and
#   uploads two rounds of public shares; the server sums them into the study;
#   each party encrypts a third of the table under the collective key and
#   uploads it;
#   one job over the three tables; each party uploads its key-switch shares
#   of the result; the analyst downloads the result released to the analyst's
#   key, decrypts it and compares it with the plaintext; the server stops.
# usage: demo-multiparty.sh BIN_DIR OUT_DIR [CSV]
set -eu
bin=$1
out=$2
csv=${3:-}
C=$bin/hestat-client
. "$(dirname "$0")/demo-common.sh"
[ "$rows" -ge 3 ] || { echo "demo: the table needs at least 3 rows (one per party)"; exit 1; }
third=$((rows / 3))
head -n 1 "$csv" > "$work/part1.csv"; head -n 1 "$csv" > "$work/part2.csv"; head -n 1 "$csv" > "$work/part3.csv"
tail -n +2 "$csv" | head -n "$third" >> "$work/part1.csv"
tail -n +$((third + 2)) "$csv" | head -n "$third" >> "$work/part2.csv"
tail -n +$((2 * third + 2)) "$csv" >> "$work/part3.csv"

t0=$(now)
start_server

# The statistics of make demo (demo-common.sh).
t1=$(now)
study=$("$C" mp-draft --schema "$csv" --parties 3 --keys "$work/analyst" --server "$url" ${stats:+--stats "$stats"} |
        sed -n 's/^study //p')
[ -n "$study" ] || { echo "demo: no study id"; exit 1; }
echo "analyst: draft uploaded, study $study ($(size "$work/analyst/draft.hst"))"
t2=$(now)
for i in 1 2 3; do
    "$C" mp-keygen --server "$url" --study-id "$study" --party "$i" --keys "$work/party$i" --round 1 > /dev/null
done
t3=$(now)
for i in 1 2 3; do
    "$C" mp-keygen --server "$url" --study-id "$study" --party "$i" --keys "$work/party$i" --round 2 > /dev/null
done
t4=$(now)
"$C" mp-status --server "$url" --study-id "$study" --out "$work/analyst/study.hst"
for i in 1 2 3; do
    "$C" encrypt --study "$work/analyst/study.hst" --in "$work/part$i.csv" --out "$work/part$i.hst"
    "$C" submit --server "$url" --study "$work/analyst/study.hst" --study-id "$study" "$work/part$i.hst" > /dev/null
done
t5=$(now)
job=$("$C" mp-job --server "$url" --study-id "$study" --stats all --out "$work/result.hst" | sed -n 's/^job //p')
t6=$(now)
for i in 1 2 3; do
    "$C" mp-share --server "$url" --study-id "$study" --job "$job" --party "$i" --keys "$work/party$i" > /dev/null
done
t7=$(now)
"$C" mp-release --server "$url" --study-id "$study" --job "$job" --out "$work/released.hst" > /dev/null
"$C" decrypt --keys "$work/analyst" --in "$work/released.hst" --out "$out/decrypted_results.csv" \
    --compare "$csv" --print --html "$out/report.html" ${stats:+--stats "$stats"}
t8=$(now)
echo
echo "phases: draft $(elapsed "$t1" "$t2") | key round 1 (3 parties) $(elapsed "$t2" "$t3") |" \
     "key round 2 $(elapsed "$t3" "$t4") | encrypt + upload (3 parties) $(elapsed "$t4" "$t5") |" \
     "compute + download $(elapsed "$t5" "$t6") | key-switch shares $(elapsed "$t6" "$t7") |" \
     "release + decrypt $(elapsed "$t7" "$t8")"
echo "wall time: $(elapsed "$t0" "$t8")"
echo "uploads: analyst draft $(size "$work/analyst/draft.hst")"
for i in 1 2 3; do
    echo "  party $i: round 1 $(size "$work/party$i/round1.hst"), round 2 $(size "$work/party$i/round2.hst")," \
         "table $(size "$work/part$i.hst"), key switch $(size "$work/party$i/keyswitch-$job.hst")"
done
echo "downloads: round-1 sum $(size "$work/party1/round1-sum.hst") per party, study $(size "$work/analyst/study.hst")," \
     "result $(size "$work/result.hst")"
echo "decrypted statistics: $out/decrypted_results.csv, as a page: $out/report.html"
