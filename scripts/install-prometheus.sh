#!/usr/bin/env bash
# install-prometheus.sh: put the Prometheus server and promtool where the
# Makefile finds them, the way install-vault.sh does for Vault.
#
# They come from Debian's `prometheus` package (2.42): `apt-get download`
# fetches the .deb and `dpkg-deb -x` unpacks just the two binaries into a
# cache outside the clone. Nothing is installed system-wide, so no
# prometheus service is started and none of the package's web-console
# dependencies are pulled in. A prometheus and promtool already on PATH are
# used instead.
#
# Usage: scripts/install-prometheus.sh     prints a directory holding
#                                          `prometheus` and `promtool`
# Env:   BANKAUTH_CACHE (default ~/.cache/bankauth)
set -euo pipefail

cache="${BANKAUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bankauth}"

log() { printf 'install-prometheus: %s\n' "$*" >&2; }

works() { [ -x "$1/prometheus" ] && [ -x "$1/promtool" ] &&
  "$1/prometheus" --version >/dev/null 2>&1 && "$1/promtool" --version >/dev/null 2>&1; }

if [ -z "${BANKAUTH_FORCE_INSTALL:-}" ] && command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  dest="$cache/prometheus-path"
  mkdir -p "$dest"
  ln -sf "$(command -v prometheus)" "$dest/prometheus"
  ln -sf "$(command -v promtool)" "$dest/promtool"
  if works "$dest"; then
    log "using prometheus and promtool from PATH"
    echo "$dest"
    exit 0
  fi
fi

# The cache is keyed by the package version apt offers; with no apt lists
# yet (a fresh machine), the newest cached copy is used if there is one.
version=$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: *\([^ ]*\)$/\1/p' | tr -c 'A-Za-z0-9.+\n-' '_')
if [ -z "$version" ] || [ "$version" = "_none_" ]; then
  cached=$(ls -d "$cache"/prometheus-deb-* 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$cached" ] && works "$cached"; then
    log "using cached $cached"
    echo "$cached"
    exit 0
  fi
  command -v apt-get >/dev/null || { log "apt-get is required (or put prometheus and promtool on PATH)"; exit 1; }
  log "apt-get update"
  apt-get update -qq >&2
  version=$(apt-cache policy prometheus | sed -n 's/^ *Candidate: *\([^ ]*\)$/\1/p' | tr -c 'A-Za-z0-9.+\n-' '_')
  [ -n "$version" ] && [ "$version" != "_none_" ] || { log "apt offers no prometheus package"; exit 1; }
fi
dest="$cache/prometheus-deb-$version"
if works "$dest"; then
  log "using cached $dest"
  echo "$dest"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt-get download writes as the _apt user where it can
log "downloading Debian's prometheus $version"
if ! (cd "$work" && apt-get download -q prometheus >&2 2>"$work/err"); then
  log "apt-get download failed ($(cat "$work/err")); apt-get update and retry"
  apt-get update -qq >&2
  (cd "$work" && apt-get download -q prometheus >&2)
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$dest"
for b in prometheus promtool; do
  cp "$work/root/usr/bin/$b" "$dest/$b.tmp"
  mv "$dest/$b.tmp" "$dest/$b"
done
works "$dest" || { log "the unpacked binaries do not run"; exit 1; }
log "installed $("$dest/prometheus" --version 2>&1 | head -1) in $dest"
echo "$dest"
