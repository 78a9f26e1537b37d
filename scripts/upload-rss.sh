#!/bin/sh
# Upload memory and CPU of hestat-server serve (issue 10, item 5), measured.
#
#   scripts/upload-rss.sh [BIN_DIR [WORK_DIR]]      (default build/bin, a new /tmp dir)
#
# Starts a server on a free loopback port with the default limits
# (--max-upload 512, --max-uploads 8), uploads a study, then runs UPLOADS (8)
# concurrent uploads of about the maximum size: half of them valid tables of
# the study (distinct encryptions of ROWS rows, about 520 MB each), half junk
# of exactly the maximum size. It samples the server's resident memory while
# they run and prints its peak (VmHWM in /proc/PID/status), the answers, and
# /health latencies during the uploads. Then it times BAD (1000) tiny bad
# uploads, one connection each, and prints the server CPU they cost.
#
# Needs curl and about 6 GB of disk under WORK_DIR (deleted at the end unless
# KEEP=1). Environment: ROWS (170000), UPLOADS (8), BAD (1000), KEEP.
set -eu
BIN=${1:-build/bin}
WORK=${2:-$(mktemp -d /tmp/hestat-rss-XXXXXX)}
ROWS=${ROWS:-170000}
UPLOADS=${UPLOADS:-8}
BAD=${BAD:-1000}
C=$BIN/hestat-client
S=$BIN/hestat-server
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
SERVER=

finish() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap finish EXIT INT TERM

field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$SERVER/status"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }

echo "== files ($ROWS rows per table) in $WORK"
( umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token" )
TOKEN=$(cat "$WORK/token")
$C sample --rows 600 --seed 1 --out "$WORK/schema.csv" > /dev/null
$C keygen --schema "$WORK/schema.csv" --keys "$WORK/keys" > /dev/null
$C sample --rows "$ROWS" --seed 2 --out "$WORK/big.csv" > /dev/null
HALF=$((UPLOADS / 2))
i=1
while [ $i -le $HALF ]; do
    $C encrypt --study "$WORK/keys/study.hst" --in "$WORK/big.csv" --out "$WORK/table$i.hst" > /dev/null
    i=$((i + 1))
done
head -c $((512 << 20)) /dev/urandom > "$WORK/junk.bin"
ls -l "$WORK/table1.hst" "$WORK/junk.bin" | awk '{printf "  %s: %d bytes (%.0f MB)\n", $NF, $5, $5 / 1048576}'

echo "== server"
$S serve --listen 127.0.0.1:0 --spool "$WORK/spool" --token-file "$WORK/token" > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q listening "$WORK/server.log" && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$WORK/server.log")
[ -n "$URL" ] || { cat "$WORK/server.log"; exit 1; }
echo "  $URL pid $SERVER, VmHWM at start $(hwm) kB"
post() { # FILE PATH ANSWER -> prints "HTTP_CODE SECONDS"
    curl -sS -o "$3" -w '%{http_code} %{time_total}\n' -X POST -H "Expect:" \
        -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/octet-stream" -T "$1" "$URL$2"
}
SID=$(curl -sS -X POST -H "Expect:" -H "Authorization: Bearer $TOKEN" -T "$WORK/keys/study.hst" "$URL/studies" |
      field study)
[ -n "$SID" ] || { echo "study upload failed"; exit 1; }
AFTER_STUDY=$(hwm)
echo "  study $SID uploaded: VmHWM $AFTER_STUDY kB (the parsed study, kept for validating tables)"

echo "== $UPLOADS concurrent uploads ($HALF valid tables, $((UPLOADS - HALF)) junk of 512 MB)"
T0=$(date +%s.%N)
i=1
while [ $i -le "$UPLOADS" ]; do
    if [ $i -le $HALF ]; then f="$WORK/table$i.hst"; else f="$WORK/junk.bin"; fi
    ( r=$(post "$f" "/studies/$SID/tables" "$WORK/answer$i")
      echo "  upload $i ($(basename "$f")): $r" > "$WORK/up$i.txt" ) &
    PIDS="${PIDS:-} $!"
    i=$((i + 1))
done
running() { for p in $PIDS; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
PEAK_RSS=0
HEALTH=
while running; do
    r=$(rss); [ "$r" -gt "$PEAK_RSS" ] && PEAK_RSS=$r
    h=$(curl -sS -o /dev/null -w '%{http_code}:%{time_total}' "$URL/health" || echo fail)
    HEALTH="$HEALTH $h"
    sleep 0.5
done
T1=$(date +%s.%N)
cat "$WORK"/up*.txt
for i in $(seq "$UPLOADS"); do echo "  answer $i: $(cut -c1-160 "$WORK/answer$i")"; done
echo "  wall time $(echo "$T1 $T0" | awk '{printf "%.1f", $1 - $2}') s"
echo "  /health during the uploads (status:seconds):$HEALTH" | cut -c1-600
echo "  peak VmRSS sampled $PEAK_RSS kB; VmHWM (peak resident memory of the server, whole run) $(hwm) kB"
echo "RESULT peak_rss_kb=$(hwm) after_study_kb=$AFTER_STUDY uploads=$UPLOADS max_upload_mb=512"

echo "== $BAD tiny bad uploads"
head -c 200 /dev/urandom > "$WORK/tiny.bin"
C0=$(cpu_ticks)
T0=$(date +%s.%N)
i=0
codes="$WORK/codes.txt"
: > "$codes"
while [ $i -lt "$BAD" ]; do
    curl -sS -o /dev/null -w '%{http_code}\n' -X POST -H "Expect:" -H "Authorization: Bearer $TOKEN" \
        -T "$WORK/tiny.bin" "$URL/studies/$SID/tables" >> "$codes"
    i=$((i + 1))
done
T1=$(date +%s.%N)
C1=$(cpu_ticks)
TCK=$(getconf CLK_TCK)
echo "  answers: $(sort "$codes" | uniq -c | tr '\n' ' ')"
echo "  server CPU $(echo "$C1 $C0 $TCK" | awk '{printf "%.2f", ($1 - $2) / $3}') s for $BAD uploads" \
     "(wall $(echo "$T1 $T0" | awk '{printf "%.1f", $1 - $2}') s, curl included)"
echo "RESULT bad_uploads=$BAD server_cpu_s=$(echo "$C1 $C0 $TCK" | awk '{printf "%.2f", ($1 - $2) / $3}')"
