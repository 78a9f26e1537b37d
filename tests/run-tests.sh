#!/bin/sh
# Runs the Criterion suite: everything once on the default backend, then the
# ntt suites once per SIMD backend this CPU has (HESTAT_SIMD=...), so no
# backend can hide behind dispatch.
#
# usage: run-tests.sh TEST_BINARY HESTAT_INFO_BINARY [CRITERION_ARGS...]
#   CRITERION_ARGS go to every pass (e.g. -j1, or --filter 'stats*/*' while
#   developing; the ntt passes add their own --filter after them).
#
# Every pass is bounded: HESTAT_TEST_TIMEOUT seconds for the pass of all
# tests (default 1200), a quarter of it for each ntt pass. A pass that runs
# out of time is killed with everything it started, reported as "TIMED OUT
# after N s" and run once more; so is a pass whose only failures are tests
# that ran past their own Criterion .timeout (reported "timed out"): a hung
# worker (GCC 12's libasan can deadlock in a forked child) costs one retry,
# not the run. A second timeout, or any other failure, fails the run.
# Failures are never retried.
#
# After each pass Criterion's own lines (its "Synthesis:" line, which does not
# count skipped tests) are followed by the skipped tests, each with its
# reason, and a closing line "tests: N passed, N failed, N skipped" taken
# from Criterion's TAP report (--tap=FILE); tests left out by a --filter are
# not counted. The run ends with "total: N passed, N failed, N skipped".
#
# HESTAT_SANITIZER_REPORTS=DIR (make sanitize): the sanitizers' log_path
# points into DIR; a report any process of a pass wrote there (even one whose
# exit status no test checks, or a leak in a Criterion worker, which Criterion
# does not count as a failure) is printed and fails the run.
set -u
tests=$1
info=$2
shift 2
limit=${HESTAT_TEST_TIMEOUT:-1200}
case $limit in
    '' | *[!0-9]* | 0)
        echo "run-tests: HESTAT_TEST_TIMEOUT must be a positive number of seconds, not '$limit'" >&2
        exit 2
        ;;
esac
if ! command -v timeout >/dev/null 2>&1; then
    echo "run-tests: GNU timeout (coreutils) is needed to bound the test passes" >&2
    exit 2
fi

# A --filter among the caller's arguments: what it leaves out is not "skipped".
user_filter=
prev=
for a in "$@"; do
    case $a in
        --filter=*) user_filter=${a#--filter=} ;;
        *) [ "$prev" = --filter ] && user_filter=$a ;;
    esac
    prev=$a
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hestat-tests.XXXXXX") || exit 2
tpid=
interrupted=0
on_signal() {
    interrupted=1
    [ -n "$tpid" ] && kill -TERM "$tpid" 2>/dev/null
}
trap on_signal INT TERM HUP
trap 'rm -rf "$tmp"' EXIT

status=0
total_pass=0
total_fail=0
total_skip=0

# summarize TAP_FILE FILTER: skipped tests with reasons, then the closing line.
# Sets sum_pass, sum_fail, sum_skip, sum_timeout (failures that are tests
# past their .timeout). Criterion reports the tests a --filter
# leaves out as skipped with its default reason "test was skipped", exactly as
# a bare cr_skip_test(); so in a filtered pass only skips that give a reason
# count (tests here always give one), and every skip counts otherwise.
summarize() {
    out=$(awk -v filtered="$2" '
        BEGIN { p = f = s = t = 0 }
        /^(not )?ok / {
            bad = /^not ok /
            line = $0
            sub(/^(not )?ok ([0-9]+ )?- /, "", line)
            name = line
            sub(/[ \t].*$/, "", name)
            if (bad) {
                f++
                if (line ~ / timed out/) { t++; printf "timed out: %s\n", name }
                next
            }
            if (line ~ /# SKIP/) {
                reason = line
                sub(/^.*# SKIP[ \t]*/, "", reason)
                if (filtered != "" && reason == "test was skipped") next
                printf "skipped: %s: %s\n", name, reason
                s++
                next
            }
            p++
        }
        END { printf "=%d %d %d %d\n", p, f, s, t }
    ' "$1")
    printf '%s\n' "$out" | grep -v '^=' || true
    set -- $(printf '%s\n' "$out" | sed -n 's/^=//p')
    sum_pass=$1 sum_fail=$2 sum_skip=$3 sum_timeout=$4
}

# Criterion's runner and its workers leave the process group (setpgid,
# setsid), so timeout's group signal cannot reach what the tests started (a
# server, a shell command). Every pass runs with HESTAT_TEST_PASS=TOKEN in its
# environment, which every descendant inherits; whatever still carries the
# token when the pass is over is killed by its pid.
reap_pass() {
    left=0
    for f in $(grep -l -s -z -x "HESTAT_TEST_PASS=$1" /proc/[0-9]*/environ); do
        pid=${f#/proc/}
        pid=${pid%/environ}
        kill -KILL "$pid" 2>/dev/null && left=$((left + 1))
    done
    [ "$left" = 0 ] || echo "run-tests: killed $left process(es) left behind by the pass" >&2
}

reports=${HESTAT_SANITIZER_REPORTS:-}
# Criterion's own runner leaks one 48-byte block (a timeout watchdog, in
# libcriterion.so itself; the stack holds no hestat frame). LSan cannot
# suppress it narrowly: a "leak:libcriterion.so" suppression matches any frame
# of a stack, and Criterion is on the stack of every allocation a test makes,
# so it would hide every leak in hestat code. Instead a report is forgiven
# only when every leak in it was allocated with nothing but frames of these
# libraries (and libc's start-up) above the allocator; any other report fails.
third_party='libcriterion\.so'

# classify FILE: prints "forgiven" for a report of third-party leaks only.
classify() {
    awk -v lib="$third_party" '
        /ERROR: AddressSanitizer|ERROR: UndefinedBehaviorSanitizer|runtime error|ERROR: ThreadSanitizer/ { other++ }
        /(Direct|Indirect) leak of/ { inleak = 1; leaks++; own = 0; next }
        inleak && /^ *#[0-9]+ / {
            if ($1 == "#0") next
            if ($0 !~ lib && $0 !~ /libc_start_call_main|__libc_start_main|[( ]_start[ )]/) own = 1
            next
        }
        inleak { if (own) mine++; inleak = 0 }
        END { if (inleak && own) mine++; if (leaks && !mine && !other) print "forgiven" }
    ' "$1"
}

# check_reports LABEL: prints the sanitizer reports of a pass; 1 if any counts.
check_reports() {
    [ -n "$reports" ] || return 0
    n=0
    for f in "$reports"/*; do
        [ -f "$f" ] || continue
        if [ "$(classify "$f")" = forgiven ]; then
            echo "run-tests: $(basename "$f"): a leak inside Criterion's runner only (no hestat frame), not counted" >&2
            continue
        fi
        n=$((n + 1))
        echo "---- sanitizer report $f"
        head -n 60 "$f"
    done
    if [ "$n" != 0 ]; then
        echo "sanitizer: $n report(s) in $reports during: $1"
        return 1
    fi
    return 0
}

loud() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! $*" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}

npass=0
# attempt LABEL FILTER SECONDS ENVS CRITERION_ARGS...: runs the pass once and
# prints its summary. Returns 0 when it passed, 1 when it failed, 2 when it
# timed out (killed, or its only failures are tests past their .timeout).
attempt() {
    label=$1 filter=$2 secs=$3 envs=$4
    shift 4
    echo "== $label"
    tap=$tmp/pass.tap
    rm -f "$tap"
    if [ -n "$reports" ]; then
        rm -rf "$reports"
        mkdir -p "$reports" || exit 2
    fi
    npass=$((npass + 1))
    token=$$.$npass.$(date +%s)
    # shellcheck disable=SC2086
    env $envs HESTAT_TEST_PASS="$token" timeout -k 30 "$secs" "$tests" --tap="$tap" "$@" &
    tpid=$!
    wait "$tpid"
    rc=$?
    # A signal interrupts wait; the pass itself is still being stopped.
    while [ "$interrupted" = 1 ] && kill -0 "$tpid" 2>/dev/null; do
        wait "$tpid"
        rc=$?
    done
    tpid=
    [ -d /proc/self ] && reap_pass "$token"
    if [ "$interrupted" = 1 ]; then
        echo "run-tests: interrupted" >&2
        exit 130
    fi
    verdict=0
    check_reports "$label" || verdict=1
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        loud "TIMED OUT after $secs s: $label (killed)"
        echo "tests: TIMED OUT after $secs s: $label"
        [ "$verdict" = 0 ] && return 2
        return 1
    fi
    [ "$rc" = 0 ] || verdict=1
    if [ ! -s "$tap" ]; then
        echo "tests: no report from the test runner (exit status $rc): $label"
        return 1
    fi
    summarize "$tap" "$filter"
    echo "tests: $sum_pass passed, $sum_fail failed, $sum_skip skipped"
    if [ "$sum_fail" -gt 0 ] && [ "$sum_fail" = "$sum_timeout" ]; then
        loud "TIMED OUT: $sum_timeout test(s) ran past their .timeout: $label"
        return 2
    fi
    [ "$sum_fail" = 0 ] || verdict=1
    return $verdict
}

# run_pass LABEL FILTER SECONDS [ENV=VALUE...] -- CRITERION_ARGS...
run_pass() {
    label=$1 filter=$2 secs=$3
    shift 3
    envs=
    while [ "$1" != -- ]; do
        envs="$envs $1"
        shift
    done
    shift
    [ -n "$filter" ] || filter=$user_filter
    attempt "$label" "$filter" "$secs" "$envs" "$@"
    v=$?
    if [ "$v" = 2 ]; then
        echo "run-tests: running the pass once more (a timeout is retried once, a failure never)" >&2
        attempt "$label (retry)" "$filter" "$secs" "$envs" "$@"
        v=$?
    fi
    if [ "$v" != 0 ]; then
        status=1
    fi
    if [ -s "$tap" ]; then
        total_pass=$((total_pass + sum_pass))
        total_fail=$((total_fail + sum_fail))
        total_skip=$((total_skip + sum_skip))
    fi
}

run_pass "all tests, default backend" "" "$limit" -- "$@"
backends=$("$info" --simd) || {
    echo "run-tests: $info --simd failed" >&2
    exit 1
}
for b in $backends; do
    run_pass "ntt tests, HESTAT_SIMD=$b" 'ntt_*/*' $((limit / 4 > 0 ? limit / 4 : 1)) "HESTAT_SIMD=$b" -- "$@" --filter 'ntt_*/*'
done
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $status
