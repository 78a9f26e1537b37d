#!/bin/sh
# Runs hestat's libFuzzer targets and reports, per target: executions,
# executions per second, coverage gained and crashes.
#
# usage: scripts/fuzz-long.sh [--runs N | --time SECONDS] [--jobs J] [--dir DIR] [TARGET...]
#   --runs N     executions per target, in all (default 10000000)
#   --time S     run each target for S seconds instead (make fuzz: --time 20)
#   --jobs J     fuzzing processes per target, sharing its corpus (default:
#                the number of cores); each runs N/J executions or S seconds
#   --dir DIR    where `make fuzz-build fuzz-seeds` put the targets and the
#                corpora (default build/fuzz)
#   TARGET       seal_reader hestat_format stats_study stats_table
#                stats_result stats_job stats_stream (default: all)
# Build first: make fuzz-seeds (or make fuzz, which runs this with --time).
#
# Inputs: DIR/corpus/TARGET (grows with what the fuzzer finds) and
# tests/fuzz-regressions/TARGET (every input there runs first). Crashes,
# leaks, timeouts and out-of-memory inputs are written to
# DIR/artifacts/TARGET/; reproduce one with `DIR/fuzz_TARGET FILE`, and once
# fixed copy it into tests/fuzz-regressions/TARGET/. Logs: DIR/logs/.
# Exit status: 1 if any target crashed, 0 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 2

runs=10000000
secs=
jobs=$(nproc 2>/dev/null || echo 1)
dir=build/fuzz
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; secs=; shift 2 ;;
        --time) secs=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        -*) echo "fuzz-long: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
targets=${*:-seal_reader hestat_format stats_study stats_table stats_result stats_job stats_stream}
for v in "$runs" "$jobs" ${secs:+"$secs"}; do
    case $v in
        '' | *[!0-9]* | 0) echo "fuzz-long: '$v' is not a positive number" >&2; exit 2 ;;
    esac
done

# Largest input per target: above its real seeds (a SEAL key file, a 5.7 MB
# study or job), not much more.
max_len() {
    case $1 in
        seal_reader) echo 4000000 ;;
        hestat_format) echo 1000000 ;;
        stats_study) echo 6000000 ;;
        stats_job) echo 6500000 ;;
        stats_stream) echo 6500000 ;;
        stats_table | stats_result) echo 600000 ;;
        *) echo 1000000 ;;
    esac
}

# One key per line: "key value" from libFuzzer's output.
field() { # field LOG REGEX: last match's number after the regex
    sed -n "s/.*$2[ :]*\([0-9][0-9]*\).*/\1/p" "$1" | tail -n 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 HESTAT_THREADS=1

status=0
summary=
for t in $targets; do
    bin=$dir/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "fuzz-long: $bin not built (make fuzz-seeds)" >&2
        exit 2
    fi
    corpus=$dir/corpus/$t
    regress=tests/fuzz-regressions/$t
    arts=$dir/artifacts/$t
    logs=$dir/logs/$t
    mkdir -p "$corpus" "$regress" "$arts" "$logs"
    rm -f "$logs"/*.log
    before=$(ls "$arts" | wc -l)
    if [ -n "$secs" ]; then
        limit="-max_total_time=$secs"
        what="$secs s"
    else
        limit="-runs=$(((runs + jobs - 1) / jobs))"
        what="$runs executions"
    fi
    echo "== fuzz_$t: $what, $jobs process(es), max_len $(max_len "$t")"
    start=$(date +%s)
    pids=
    j=1
    while [ "$j" -le "$jobs" ]; do
        "$bin" "$limit" -max_len="$(max_len "$t")" -timeout=120 -rss_limit_mb=4096 \
            -print_final_stats=1 -artifact_prefix="$arts/" "$corpus" "$regress" \
            >"$logs/$j.log" 2>&1 &
        pids="$pids $!"
        j=$((j + 1))
    done
    failed=0
    for p in $pids; do
        wait "$p" || failed=1
    done
    wall=$(($(date +%s) - start))
    [ "$wall" -gt 0 ] || wall=1
    execs=0 new=0 init_cov= done_cov=0
    for l in "$logs"/*.log; do
        e=$(field "$l" 'stat::number_of_executed_units')
        execs=$((execs + ${e:-0}))
        n=$(field "$l" 'stat::new_units_added')
        new=$((new + ${n:-0}))
        i=$(sed -n 's/.*INITED cov: \([0-9][0-9]*\).*/\1/p' "$l" | head -n 1)
        [ -z "$init_cov" ] && init_cov=${i:-0}
        [ -n "$i" ] && [ "$i" -lt "$init_cov" ] && init_cov=$i
        d=$(sed -n 's/^#[0-9]*[^c]*cov: \([0-9][0-9]*\).*/\1/p' "$l" | tail -n 1)
        [ -n "$d" ] && [ "$d" -gt "$done_cov" ] && done_cov=$d
    done
    [ "$done_cov" -ge "${init_cov:-0}" ] || done_cov=$init_cov
    crashes=$(($(ls "$arts" | wc -l) - before))
    rate=$((execs / wall))
    line="fuzz_$t: $execs executions in $wall s ($rate exec/s), coverage ${init_cov:-0} -> $done_cov edges (+$((done_cov - ${init_cov:-0}))), $new new inputs, $crashes crash(es)"
    if [ "$rate" -gt 0 ]; then
        proj=$((10000000 / rate))
        line="$line; 10M executions at this rate: $((proj / 3600)) h $((proj % 3600 / 60)) min"
    fi
    echo "$line"
    summary="$summary$line
"
    if [ "$failed" = 1 ] || [ "$crashes" -gt 0 ]; then
        status=1
        for l in "$logs"/*.log; do
            if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error|==ERROR|SUMMARY:' "$l"; then
                echo "---- $l"
                grep -E -A 30 'ERROR:|runtime error' "$l" | head -n 60
            fi
        done
        echo "fuzz-long: fuzz_$t FAILED; inputs in $arts (reproduce: $bin FILE)"
    fi
done
echo "== summary"
printf '%s' "$summary"
exit $status
