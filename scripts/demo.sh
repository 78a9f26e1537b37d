#!/bin/sh
# make demo: the whole service on this machine, as the original project did it
# with two containers and FTP, done properly:
#   the server starts on a free loopback port with a temporary spool;
#   the analyst creates keys and publishes the study;
#   two contributors encrypt their halves of the table and upload them;
#   the analyst asks for the statistics, downloads and decrypts them, and
#   compares them with the plaintext ones;
#   with the Framingham columns, the analyst also fits the classic logistic
#   risk model: a second study (glm parameters, N = 16384) that the two
#   contributors encrypt and upload to, and Newton rounds that run as jobs of
#   the server (only the encrypted totals of each round come back); its rows
#   join the report; the server stops.
# usage: demo.sh BIN_DIR OUT_DIR [CSV]
set -eu
bin=$1
out=$2
csv=${3:-}
. "$(dirname "$0")/demo-common.sh"
half=$((rows / 2))
head -n $((half + 1)) "$csv" > "$work/part1.csv"
{ head -n 1 "$csv"; tail -n +$((half + 2)) "$csv"; } > "$work/part2.csv"

t0=$(now)
serve_args="--max-upload 1024"
start_server

# The statistics come from demo-common.sh; the logistic model of ten-year
# coronary heart disease with the Framingham columns (its own study).
glm=
for c in TenYearCHD age Gender cigsPerDay totChol sysBP glucose; do has "$c" || glm=no; done
[ -z "$glm" ] && glm="glm:TenYearCHD~age+Gender+cigsPerDay+totChol+sysBP+glucose:binomial"
[ "$glm" = no ] && glm=

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
g0=$t5 g1=$t5 g2=$t5
if [ -n "$glm" ]; then
    "$bin/hestat-client" keygen --schema "$csv" --keys "$work/glm-keys" --stats "$glm" > /dev/null
    for i in 1 2; do
        "$bin/hestat-client" encrypt --study "$work/glm-keys/study.hst" --in "$work/part$i.csv" --out "$work/glm-part$i.hst"
    done
    gstudy=$("$bin/hestat-client" submit --server "$url" --study "$work/glm-keys/study.hst" "$work/glm-part1.hst" |
        sed -n 's/^study //p')
    "$bin/hestat-client" submit --server "$url" --study "$work/glm-keys/study.hst" --study-id "$gstudy" \
        "$work/glm-part2.hst" > /dev/null
    g1=$(now)
    "$bin/hestat-client" glm --server "$url" --study-id "$gstudy" --keys "$work/glm-keys" --stats "$glm" \
        --compare "$csv" --out "$work/glm_results.csv"
    g2=$(now)
fi
t5b=$(now)
"$bin/hestat-client" decrypt --keys "$work/keys" --in "$work/result.hst" --out "$out/decrypted_results.csv" \
    --compare "$csv" --print --html "$out/report.html" ${stats:+--stats "$stats"} \
    ${glm:+--add-rows "$work/glm_results.csv"}
t6=$(now)
echo
echo "phases: keygen $(elapsed "$t1" "$t2") | encrypt (2 contributors) $(elapsed "$t2" "$t3") |" \
     "upload $(elapsed "$t3" "$t4") | compute + download $(elapsed "$t4" "$t5") | decrypt $(elapsed "$t5b" "$t6")"
if [ -n "$glm" ]; then
    echo "logistic model: keygen + encrypt + upload $(elapsed "$g0" "$g1") (study $(size "$work/glm-keys/study.hst")," \
         "tables $(size "$work/glm-part1.hst") + $(size "$work/glm-part2.hst")) | rounds $(elapsed "$g1" "$g2")"
fi
echo "uploads: study $(size "$work/keys/study.hst") (keys and schema), tables $(size "$work/part1.hst") +" \
     "$(size "$work/part2.hst"); result $(size "$work/result.hst")"
echo "decrypted statistics: $out/decrypted_results.csv, as a page: $out/report.html"
