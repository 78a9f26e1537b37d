#!/bin/sh
# The scripted scale run of docs/scaling.md: a generated table of ROWS rows
# (16 columns, the Framingham schema) through sample, keygen, encrypt, job,
# compute (one process, or RANKS MPI ranks bound to cores) and decrypt
# --compare, each step's wall time, CPU time and peak RSS printed, then the
# server's rows per second per core and the report's worst errors.
#
#   sh scripts/scale-run.sh ROWS [RANKS] [DIR]
#
# ROWS 10^7 needs about 25 GB of disk in DIR (the table, 22.4 GB, is removed
# once the job holds it) and, at 8,000 rows/s per core, 10 to 20 minutes of
# server time on two cores: run it by hand, not in CI. DIR defaults to
# /tmp/hestat-scale-ROWS and is removed at the end unless KEEP=1.
# LAYOUT=columns makes a column-major study (keygen --layout columns).
set -eu

usage() {
    echo "usage: sh scripts/scale-run.sh ROWS [RANKS] [DIR]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 3 ] || usage
rows=$1
ranks=${2:-1}
dir=${3:-/tmp/hestat-scale-$rows}
case $rows in '' | *[!0-9]*) usage ;; esac
case $ranks in '' | *[!0-9]* | 0) usage ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
C=$here/build/bin/hestat-client
S=$here/build/bin/hestat-server
[ -x "$C" ] && [ -x "$S" ] || {
    echo "scale-run: build first (make)" >&2
    exit 1
}
if [ "$ranks" -gt 1 ] && ! command -v mpirun > /dev/null; then
    echo "scale-run: $ranks ranks need mpirun (Open MPI)" >&2
    exit 1
fi
mkdir -p "$dir"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT

# step NAME CMD...: runs CMD, prints NAME with wall, user, sys and peak RSS.
step() {
    name=$1
    shift
    /usr/bin/time -o "$dir/time.$name" -f "%e %U %S %M" "$@"
    awk -v n="$name" '{printf "%-8s wall %8.1f s  cpu %8.1f s  peak RSS %7.0f MiB\n", n, $1, $2 + $3, $4 / 1024}' \
        "$dir/time.$name"
}

family=$(awk -F: '/^cpu family/ {gsub(/ /, "", $2); print $2; exit}' /proc/cpuinfo)
model=$(awk -F: '/^model[ \t]*:/ {gsub(/ /, "", $2); print $2; exit}' /proc/cpuinfo)
echo "scale-run: $rows rows, $ranks rank(s), layout ${LAYOUT:-rows}, cpu family $family model $model, $(nproc) processors, in $dir"
step sample "$C" sample --rows "$rows" --seed 11 --out "$dir/t.csv"
"$C" sample --rows 2000 --seed 6 --out "$dir/schema.csv"
step keygen "$C" keygen --schema "$dir/schema.csv" --keys "$dir/k" --layout "${LAYOUT:-rows}"
step encrypt "$C" encrypt --study "$dir/k/study.hst" --in "$dir/t.csv" --out "$dir/t.hst"
step job "$C" job --study "$dir/k/study.hst" --out "$dir/job.hst" "$dir/t.hst"
echo "table $(du -m "$dir/t.hst" | cut -f1) MB, job $(du -m "$dir/job.hst" | cut -f1) MB"
rm "$dir/t.hst"
root=
[ "$(id -u)" != 0 ] || root=--allow-run-as-root
if [ "$ranks" -gt 1 ]; then
    step compute env HESTAT_THREADS=1 mpirun $root -n "$ranks" --bind-to core "$S" compute "$dir/job.hst" --out "$dir/r.hst"
else
    step compute "$S" compute "$dir/job.hst" --out "$dir/r.hst"
fi
step decrypt "$C" decrypt --keys "$dir/k" --in "$dir/r.hst" --compare "$dir/t.csv" --out "$dir/report.csv"
cores=$ranks
[ "$ranks" -gt 1 ] || cores=${HESTAT_THREADS:-$(nproc)}
awk -v r="$rows" -v c="$cores" '{printf "server: %.0f rows/s, %.0f rows/s per core (%d cores)\n", r / $1, r / $1 / c, c}' \
    "$dir/time.compute"
awk -F, 'NR > 1 && $1 == "mean" && $7 + 0 > m {m = $7 + 0} NR > 1 && $1 == "corr" && $6 + 0 > c {c = $6 + 0}
    END {printf "worst errors: mean %.2g (relative), corr %.2g (absolute)\n", m, c}' "$dir/report.csv"
