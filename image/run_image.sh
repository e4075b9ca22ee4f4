#!/usr/bin/env bash
# Run an OCI image's server on this sandbox, where plain `podman run` fails (crun: setrlimit
# RLIMIT_NOFILE: Operation not permitted; then: cgroups in hybrid mode not supported).
#
#   run_image.sh start IMAGE PORT [NAME]   start the image's ENTRYPOINT+CMD, wait until
#                                          http://127.0.0.1:PORT/ answers; prints NAME
#   run_image.sh stop NAME                 stop it, remove the container, unmount everything
#   run_image.sh health NAME               run the image's HEALTHCHECK command in it (exit 0: healthy)
#   run_image.sh exec NAME CMD...          run CMD in it as the image's user, with its environment
#   run_image.sh logs NAME                 its output so far
#   run_image.sh test IMAGE PORT -- CMD... start, run CMD (with $URL set), always stop; CMD's exit code
#
# RUN_MODE=podman (default): a real container: `podman run` through ./crun-norlimit (drops the rlimits
#   and hides the hybrid cgroup2 mount from crun), with cgroups disabled; own network namespace with
#   127.0.0.1:PORT forwarded to the image's $PORT (or its first EXPOSEd port); --init so SIGTERM works.
# RUN_MODE=chroot: fallback without any OCI runtime: `podman create` + `podman mount` (a writable
#   overlay), then in new mount + PID namespaces: /proc, a minimal /dev, a read-only /sys, the host's
#   /etc/resolv.conf and /etc/hosts; `chroot --userspec` as the image's USER, with its Env and WorkingDir,
#   PORT=PORT (it shares the host network, so the app must listen on $PORT). The namespaces' mounts go
#   away with the process; stop unmounts and removes the container.
# START_TIMEOUT=120 seconds to wait for the port. CONTAINER_ENV="NAME=VALUE ..." sets variables in the container
# (as `docker run -e` does: a mode, a secret). Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=/run/sml-image
MODE=${RUN_MODE:-podman}
START_TIMEOUT=${START_TIMEOUT:-120}

log() { printf '[run_image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "$*"; exit 1; }
# Run "$@" with every file descriptor above 2 closed: podman hands its inherited descriptors on to
# conmon, which outlives it (as long as the container runs), so a caller's pipe (`| tee`, `$(...)`, a
# CI runner's log pipe) would stay open and the caller would wait for EOF until the container stops.
CLOSEFDS_PY='import os, sys; os.closerange(3, 1 << 16); os.execvp(sys.argv[1], sys.argv[1:])'
closefds() { python3 -c "$CLOSEFDS_PY" "$@"; }
# podman 4.3 logs an error for every container with a HEALTHCHECK when systemd is not PID 1 (timers):
# harmless here, so drop just those lines. (No process substitution: conmon would inherit its pipe.)
quiet_podman() {
  local err rc=0
  err=$(mktemp)
  closefds podman "$@" 2>"$err" || rc=$?
  grep -v 'unable to get systemd connection' "$err" >&2 || true
  rm -f "$err"
  return $rc
}

podman_conf() {
  # containers.conf naming this script's crun-norlimit by its absolute path
  mkdir -p "$STATE"
  cat >"$STATE/containers.conf" <<EOF
[containers]
cgroups = "disabled"
[engine]
runtime = "crun-norlimit"
# podman 4.3 reads "runtime_supports_nocgroup" (its shipped containers.conf documents ...nocgroups)
runtime_supports_nocgroup = ["crun", "krun", "crun-norlimit"]
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "crun-norlimit"]
[engine.runtimes]
crun-norlimit = ["$here/crun-norlimit"]
EOF
  export CONTAINERS_CONF=$STATE/containers.conf
}

wait_port() {  # wait_port PORT ALIVE_CMD...: until GET / gets any HTTP answer, or ALIVE_CMD fails
  local port=$1; shift
  local t0=$EPOCHREALTIME
  while :; do
    if python3 - "$port" <<'PY'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2)
except urllib.error.HTTPError:
    pass  # an HTTP error status is still a server answering
except Exception:
    sys.exit(1)
PY
    then
      log "port $port answered after $(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')") s"
      return 0
    fi
    "$@" || { log "the server exited before port $port answered"; return 1; }
    if (($(python3 -c "print(int($EPOCHREALTIME - $t0))") >= START_TIMEOUT)); then
      log "port $port did not answer within $START_TIMEOUT s"; return 1
    fi
    sleep 0.25
  done
}

image_config() {  # image_config IMAGE: the image's config as JSON
  podman image inspect --format '{{json .Config}}' "$1"
}

start_podman() {
  local image=$1 port=$2 name=$3 cport
  podman_conf
  cport=$(image_config "$image" | python3 -c '
import json, sys
c = json.load(sys.stdin)
env = dict(e.split("=", 1) for e in c.get("Env") or [])
ports = [p.split("/")[0] for p in (c.get("ExposedPorts") or {})]
print(env.get("PORT") or (ports[0] if ports else ""))')
  [[ -n $cport ]] || die "$image has no PORT env and no EXPOSE: cannot tell which port to forward"
  quiet_podman rm -f --ignore "$name" >/dev/null
  local variables=()
  for pair in ${CONTAINER_ENV:-}; do variables+=(-e "$pair"); done
  quiet_podman run -d --name "$name" --init --health-interval=disable "${variables[@]}" \
    -p "127.0.0.1:$port:$cport" "$image" >/dev/null
  echo podman >"$STATE/$name.mode"
  wait_port "$port" alive_podman "$name"
}
alive_podman() { [[ $(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }

start_chroot() {
  local image=$1 port=$2 name=$3 cid mp spec
  quiet_podman rm -f --ignore "$name" >/dev/null
  cid=$(quiet_podman create --name "$name" "$image")
  mp=$(podman mount "$cid")
  # user, env, workdir and argv from the image config, resolved against the image's /etc/passwd|group
  spec=$(python3 - "$(image_config "$image")" "$mp" "$port" <<'PY'
import json, os, shlex, sys
c, root, port = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
def table(path):
    try:
        return [l.rstrip("\n").split(":") for l in open(root + path) if l.count(":") >= 2]
    except FileNotFoundError:
        return []
pw, gr = table("/etc/passwd"), table("/etc/group")
user, _, group = (c.get("User") or "0").partition(":")
ent = next((p for p in pw if p[0] == user or p[2] == user), None)
uid = int(ent[2]) if ent else int(user)
gid = int(ent[3]) if ent and not group else 0
if group:
    g = next((g for g in gr if g[0] == group or g[2] == group), None)
    gid = int(g[2]) if g else int(group)
env = dict(e.split("=", 1) for e in c.get("Env") or [])
env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
env.setdefault("HOME", ent[5] if ent else "/")
env["HOSTNAME"] = "localhost"
env["PORT"] = port
env.update(pair.split("=", 1) for pair in os.environ.get("CONTAINER_ENV", "").split() if "=" in pair)
argv = (c.get("Entrypoint") or []) + (c.get("Cmd") or [])
print(f"uid={uid} gid={gid} workdir={shlex.quote(c.get('WorkingDir') or '/')}")
print("env=(" + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + ")")
print("argv=(" + " ".join(shlex.quote(a) for a in argv) + ")")
PY
)
  printf '%s\n' "cid=$cid" "mp=$mp" "$spec" >"$STATE/$name.chroot"
  echo chroot >"$STATE/$name.mode"
  # New mount and PID namespaces; their PID 1 is this root bash, which stays (a chroot --userspec'd
  # server as PID 1 would lose unshare's --kill-child, a parent-death signal that the kernel clears on a
  # change of credentials, and would outlive a killed unshare). bash forwards SIGTERM to the server; when
  # bash dies, the kernel kills everything left in the PID namespace and drops the namespace's mounts.
  # exec'd through closefds so that $! is unshare's PID and no caller's descriptor leaks into it.
  (exec python3 -c "$CLOSEFDS_PY" setsid unshare --mount --propagation private --pid --fork --kill-child \
    --mount-proc="$mp/proc" bash -c '
      set -euo pipefail
      source "$1"
      mount -t tmpfs -o nosuid,mode=755,size=64k tmpfs "$mp/dev"
      for d in null zero full random urandom tty; do touch "$mp/dev/$d"; mount --bind "/dev/$d" "$mp/dev/$d"; done
      mkdir -p "$mp/dev/pts" "$mp/dev/shm"
      mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$mp/dev/pts"
      ln -s pts/ptmx "$mp/dev/ptmx"; ln -s /proc/self/fd "$mp/dev/fd"
      ln -s /proc/self/fd/0 "$mp/dev/stdin"; ln -s /proc/self/fd/1 "$mp/dev/stdout"; ln -s /proc/self/fd/2 "$mp/dev/stderr"
      mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$mp/dev/shm"
      mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$mp/sys"
      for f in resolv.conf hosts; do
        [ -e "$mp/etc/$f" ] || touch "$mp/etc/$f"
        mount --bind -o ro "/etc/$f" "$mp/etc/$f"
      done
      chroot --userspec="$uid:$gid" --groups="$gid" "$mp" /usr/bin/env -i "${env[@]}" \
        /bin/sh -c "cd \"\$1\" && shift && exec \"\$@\"" sh "$workdir" "${argv[@]}" &
      server=$!
      trap "kill -TERM $server 2>/dev/null" TERM INT
      rc=0
      while kill -0 "$server" 2>/dev/null; do wait "$server" && rc=0 || rc=$?; done
      exit "$rc"
    ' bash "$STATE/$name.chroot" </dev/null >"$STATE/$name.log" 2>&1) &
  echo $! >"$STATE/$name.pid"
  wait_port "$port" alive_chroot "$name"
}
alive_chroot() { kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

cmd_start() {
  local image=${1:?image} port=${2:?port} name=${3:-sml-image-${2}}
  [[ $(id -u) == 0 ]] || die "run as root"
  mkdir -p "$STATE"
  podman image exists "$image" || die "no image $image"
  if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port"
  fi
  log "starting $image as $name on 127.0.0.1:$port ($MODE)"
  if ! "start_$MODE" "$image" "$port" "$name"; then
    cmd_logs "$name" | tail -30 >&2 || true
    cmd_stop "$name"
    return 1
  fi
  echo "$name"
}

cmd_stop() {
  local name=${1:?name} mode pid
  mode=$(cat "$STATE/$name.mode" 2>/dev/null || echo podman)
  if [[ $mode == podman ]]; then
    podman_conf
    quiet_podman stop -t 10 --ignore "$name" >/dev/null
    quiet_podman rm -f --ignore "$name" >/dev/null
  else
    pid=$(cat "$STATE/$name.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      # SIGTERM to the namespace's PID 1 (unshare's child), which passes it to the server; SIGKILL after
      # 10 s. When PID 1 dies the kernel kills the rest of its PID namespace and unmounts its mounts.
      local init
      init=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
      kill -TERM ${init:-$pid} 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL ${init:-} "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    podman umount "$name" >/dev/null 2>&1 || true
    quiet_podman rm -f --ignore "$name" >/dev/null
  fi
  rm -f "$STATE/$name".{mode,pid,chroot,log}
  if grep -q "${name}" /proc/mounts; then log "leftover mounts:"; grep "$name" /proc/mounts >&2; return 1; fi
  log "stopped $name"
}

cmd_health() {
  local name=${1:?name} mode test
  mode=$(cat "$STATE/$name.mode" 2>/dev/null || echo podman)
  if [[ $mode == podman ]]; then
    podman_conf
    quiet_podman healthcheck run "$name"
  else
    # HEALTHCHECK's test (["CMD-SHELL", "..."] or ["CMD", ...]) run like the server: same root, user, env
    source "$STATE/$name.chroot"
    test=$(podman container inspect --format '{{json .Config.Healthcheck}}' "$name" | python3 -c '
import json, shlex, sys
h = json.load(sys.stdin) or {}
t = h.get("Test") or []
if not t or t[0] == "NONE": sys.exit(3)
print(shlex.join(["/bin/sh", "-c", t[1]] if t[0] == "CMD-SHELL" else t[1:]))')
    eval "local argv2=($test)"
    chroot --userspec="$uid:$gid" --groups="$gid" "$mp" /usr/bin/env -i "${env[@]}" "${argv2[@]}"
  fi
}

cmd_exec() {
  local name=${1:?name} mode
  shift
  mode=$(cat "$STATE/$name.mode" 2>/dev/null || echo podman)
  if [[ $mode == podman ]]; then
    podman_conf
    quiet_podman exec "$name" "$@"
  else
    source "$STATE/$name.chroot"
    chroot --userspec="$uid:$gid" --groups="$gid" "$mp" /usr/bin/env -i "${env[@]}" "$@"
  fi
}

cmd_logs() {
  local name=${1:?name}
  if [[ $(cat "$STATE/$name.mode" 2>/dev/null) == chroot ]]; then cat "$STATE/$name.log"
  else podman_conf; podman logs "$name"; fi
}

cmd_test() {
  local image=${1:?image} port=${2:?port} rc=0
  shift 2; [[ ${1:-} == -- ]] && shift
  test_name=$(cmd_start "$image" "$port") || return 1
  trap 'cmd_stop "$test_name"' EXIT
  URL=http://127.0.0.1:$port/ "$@" || rc=$?
  return $rc
}

case ${1:-} in
  start | stop | health | exec | logs | test) sub=$1; shift; "cmd_$sub" "$@" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
