#!/usr/bin/env bash
# Build the apps' image from the Dockerfile at the top of the checkout (`make image`, `make image-test`).
#
#   image/build.sh TAG [BASE_IMAGE] [extra build args...]
#
# BASE_IMAGE defaults to the Dockerfile's own (python:3.11-slim). With podman (preferred when installed):
#  --isolation chroot: the RUN steps need no OCI runtime (where `podman run` cannot start a container, as on
#    sandboxed CI machines whose kernel refuses to raise rlimits; see image/crun-norlimit);
#  --format docker: the OCI format drops HEALTHCHECK;
#  -v the host's CA bundle over the image's, for the RUN steps only (never committed to the image): pip then
#    trusts what the host trusts, e.g. a TLS proxy in front of PyPI.
# With docker: a plain `docker build`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
tag=${1:?usage: image/build.sh TAG [BASE_IMAGE] [build args...]}
base=${2:-}
shift $(( $# < 2 ? $# : 2 ))
args=(-t "$tag" ${base:+--build-arg "BASE_IMAGE=$base"} "$@")

if command -v podman >/dev/null 2>&1; then
  ca=/etc/ssl/certs/ca-certificates.crt
  mounts=()
  [[ -f $ca ]] && mounts=(-v "$ca:$ca:ro")
  exec podman build --isolation chroot --format docker "${mounts[@]}" "${args[@]}" "$root"
elif command -v docker >/dev/null 2>&1; then
  exec docker build "${args[@]}" "$root"
fi
echo "image/build.sh: neither podman nor docker is installed (Debian: apt-get install podman)." >&2
exit 1
