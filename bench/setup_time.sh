#!/usr/bin/env bash
# Time `make setup` in a fresh clone, with its own new .venv and empty pip and uv caches.
#   bench/setup_time.sh REPO [REF]     e.g. bench/setup_time.sh . HEAD, or bench/setup_time.sh . <commit before the lock>
#   WARM=1 bench/setup_time.sh ...     a second run reusing the caches the previous run filled
# Prints one line: ref, cache state, wall and CPU seconds (user + system, all processes), the load average before and after.
set -euo pipefail
repo=$1
ref=${2:-HEAD}
work=${SETUP_BENCH_DIR:-/tmp/sml-setup-bench}
clone=$work/clone
if [[ -z ${WARM:-} ]]; then rm -rf "$work/pip-cache" "$work/uv-cache"; fi
rm -rf "$clone"
mkdir -p "$work"
git clone --quiet "$repo" "$clone"
git -C "$clone" checkout --quiet "$ref"
load_before=$(cut -d' ' -f1 /proc/loadavg)
TIMEFORMAT='%R %U %S'
{ time PIP_CACHE_DIR=$work/pip-cache UV_CACHE_DIR=$work/uv-cache \
    make -C "$clone" --no-print-directory setup >"$work/setup.log" 2>&1; } 2>"$work/time.txt"
read -r wall user system <"$work/time.txt"
caches=cold; if [[ -n ${WARM:-} ]]; then caches=warm; fi
printf '%s %s caches: make setup %.0f s wall, %.0f s CPU (load average %s -> %s)\n' \
  "$(git -C "$clone" rev-parse --short HEAD)" "$caches" "$wall" "$(echo "$user + $system" | bc)" \
  "$load_before" "$(cut -d' ' -f1 /proc/loadavg)"
