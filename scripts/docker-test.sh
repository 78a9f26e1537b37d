#!/bin/sh
# make docker-test: the image and the compose study, end to end, then torn down.
#   1. a Docker engine (dockerd started here when none runs and we are root);
#   2. the debian:12 base (pulled, or built offline by scripts/docker-base.sh);
#   3. docker build -t hestat . ; `hestat-info` in the image; its size;
#   4. compose.yaml in a scratch directory: server, analyst-keys, two contributors
#      and the analyst, with `docker compose` (v2) or `docker-compose` (v1);
#   5. every container exited 0, decrypted_results.csv on the host, its numbers
#      against the plaintext (counts exact, means 1e-6, sd 1e-5, correlations 1e-5);
#   6. containers, volumes and network removed, whatever happened.
# usage: docker-test.sh [CSV]     (CSV: a table for the study, default generated)
set -eu
cd "$(dirname "$0")/.."
csv=${1:-}
dockerd_pid=
say() { echo "docker-test: $*"; }

# What it needs from Debian, installed when missing (root only).
need=
for p in docker.io docker-compose debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ] && [ "$(id -u)" -eq 0 ]; then
    say "installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $need > /dev/null
fi

if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "no Docker engine is running; start one (as root: dockerd &) or run make docker-test as root" >&2
        exit 1
    fi
    command -v dockerd >/dev/null 2>&1 || { say "dockerd missing: apt-get install docker.io" >&2; exit 1; }
    say "starting dockerd (log: ${TMPDIR:-/tmp}/hestat-dockerd.log)"
    nohup dockerd > "${TMPDIR:-/tmp}/hestat-dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "dockerd did not start" >&2; tail -n 20 "${TMPDIR:-/tmp}/hestat-dockerd.log" >&2; exit 1; }
fi
if docker compose version >/dev/null 2>&1; then compose="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then compose=docker-compose
else say "no compose tool: apt-get install docker-compose" >&2; exit 1; fi
say "compose: $compose ($($compose version --short 2>/dev/null || $compose version | head -n 1))"

sh scripts/docker-base.sh debian:12
t0=$(date +%s)
docker build -q -t hestat . > /dev/null
say "image hestat built in $(( $(date +%s) - t0 )) s, $(docker image inspect -f '{{.Size}}' hestat | awk '{printf "%.0f MB", $1/1e6}')"
docker run --rm hestat hestat-info | sed 's/^/  hestat-info: /'
test "$(docker run --rm hestat id -u)" = 10001 || { say "the image does not run as the hestat user" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/hestat-docker.XXXXXX")
project=hestattest$$
teardown() {
    rc=$?
    (cd "$work" && $compose -p "$project" down -v --remove-orphans > /dev/null 2>&1) || true
    rm -rf "$work"
    if [ -n "$dockerd_pid" ]; then # the engine this script started goes too
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    fi
    exit "$rc"
}
trap teardown EXIT INT TERM
cp compose.yaml "$work/"
mkdir -p "$work/data/input" "$work/data/analyst"
[ -z "$csv" ] || cp "$csv" "$work/data/input/table.csv"
head -c 32 /dev/urandom | base64 > "$work/hestat_token.txt"
chmod 600 "$work/hestat_token.txt"
chown 10001 "$work/hestat_token.txt" "$work/data/analyst" 2>/dev/null || chmod 777 "$work/data/analyst"
say "compose study in $work ($([ -n "$csv" ] && echo "$csv" || echo 'generated table'))"
t0=$(date +%s)
status=0
(cd "$work" && timeout 900 $compose -p "$project" up --no-build) > "$work/compose.log" 2>&1 || status=$?
say "compose up exited $status after $(( $(date +%s) - t0 )) s"
failed=0
for id in $(cd "$work" && $compose -p "$project" ps -q 2>/dev/null); do
    line=$(docker inspect -f '{{.Name}} {{.State.ExitCode}}' "$id")
    say "  container ${line#/}"
    [ "${line##* }" = 0 ] || failed=1
done
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    tail -n 30 "$work/compose.log" >&2
    (cd "$work" && $compose -p "$project" logs --no-color --tail 15) >&2 2>/dev/null || true
    say "FAILED: a container or compose itself exited non-zero" >&2
    exit 1
fi
report=$work/data/analyst/decrypted_results.csv
test -s "$report" || { say "FAILED: no $report on the host" >&2; exit 1; }
grep -E 'analyst.*(largest errors|wrote)' "$work/compose.log" | sed 's/^/  /' || true
awk -F, 'NR > 1 && $3 == "" {
        small = ($5 + 0 < 1e-3 && $5 + 0 > -1e-3)
        if ($1 == "count" && $6 + 0 != 0) bad = bad " count:" $2
        if ($1 == "mean" && (small ? $6 + 0 : $7 + 0) > 1e-6) bad = bad " mean:" $2
        if ($1 == "sd" && $7 + 0 > 1e-5 && !small) bad = bad " sd:" $2
        if ($1 == "corr" && $6 != "" && $6 + 0 > 1e-5) bad = bad " corr:" $2
        n[$1]++
    }
    END {
        if (bad != "" || n["mean"] < 1 || n["count"] < 1) { print "docker-test: out of bounds:" bad; exit 1 }
        printf "docker-test: %d means, %d sd, %d correlations within bounds of the plaintext\n", n["mean"], n["sd"], n["corr"]
    }' "$report"
say "passed"
