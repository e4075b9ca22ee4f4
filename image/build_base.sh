#!/usr/bin/env bash
# Make a local stand-in for python:3.11-slim from Debian's packages alone (no image registry needed), for
# `make image-test` (the Dockerfile's BASE_IMAGE):
# debootstrap --variant=minbase bookworm + python3 3.11 + venv + pip + ca-certificates, imported into podman.
#
#   build_base.sh [IMAGE]            IMAGE defaults to $BASE_IMAGE or localhost/sml-base:bookworm
#   FORCE=1 build_base.sh            rebuild even when the image exists
#   MIRROR=http://deb.debian.org/debian   Debian mirror (the one apt uses here)
#
# Idempotent: exits 0 at once when the image already exists. Needs root (debootstrap, podman's root storage).
set -euo pipefail

IMAGE=${1:-${BASE_IMAGE:-localhost/sml-base:bookworm}}
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# What python:3.11-slim has at run time that minbase lacks: python3 + venv + pip, CA certificates,
# /etc/services and /etc/protocols (netbase), time zones (tzdata).
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,netbase,tzdata

log() { printf '[build_base %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ $(id -u) != 0 ]]; then log "run as root"; exit 1; fi

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [[ -z ${FORCE:-} ]] && podman image exists "$IMAGE"; then
  log "$IMAGE exists: nothing to do (FORCE=1 to rebuild)"
  exit 0
fi

start=$SECONDS
work=$(mktemp -d /var/tmp/sml-base.XXXXXX)
root=$work/rootfs
cleanup() {
  # debootstrap may leave /proc, /sys mounted in the target when it fails half way
  for m in $(awk -v r="$root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log "debootstrap --variant=minbase $SUITE (+ $PACKAGES) into $root"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# Security and point-release updates, as in Debian's own container images.
cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
log "apt-get upgrade inside the root file system"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -q && apt-get -y -q -o Dpkg::Options::=--force-confold upgrade' >"$work/upgrade.log" 2>&1 \
  || { tail -30 "$work/upgrade.log" >&2; exit 1; }

# Slim like debian:bookworm-slim: no docs, man pages or translations now or in later apt-get installs,
# and apt cleans its cache after each install.
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/no-recommends"
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
  "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old "$root"/tmp/* "$root"/var/tmp/*

# Look enough like python:3.11-slim: python, python3, pip, pip3 at /usr/local/bin, and a system pip that
# installs (python:3.11-slim's python is not Debian's, so it has no PEP 668 marker).
for n in python python3 python3.11; do ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$n"; done
for n in pip pip3; do ln -sf /usr/bin/pip3 "$root/usr/local/bin/$n"; done
rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
# A container runtime provides these; an image keeps them empty.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
find "$root/dev" -mindepth 1 -delete

pyver=$(chroot "$root" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
log "python $pyver; importing as $IMAGE"
tar --numeric-owner --xattrs -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$pyver" \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
  - "$IMAGE" >/dev/null
log "done in $((SECONDS - start)) s: $(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec) $IMAGE"
