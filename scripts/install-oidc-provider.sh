#!/usr/bin/env bash
# install-oidc-provider.sh: put panva's oidc-provider (a certified OpenID
# provider implementing PAR, PKCE, DPoP, private_key_jwt, RFC 9207 and the
# FAPI 2.0 profile) where the consent tests find it. Test-only: the plugin
# never runs it.
#
# The exact versions are pinned by internal/oidcop/package-lock.json and
# installed with `npm ci` from the npm registry into a cache outside the
# clone, keyed by the lock file's checksum. Needs Node.js (>= 20) and npm;
# on a machine without them, Debian's nodejs and npm packages are installed.
#
# Usage: scripts/install-oidc-provider.sh    prints the directory holding
#                                             node_modules/oidc-provider
# Env:   BANKAUTH_CACHE (default ~/.cache/bankauth)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)/internal/oidcop"
cache="${BANKAUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bankauth}"

log() { printf 'install-oidc-provider: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node or npm not found: installing Debian's nodejs and npm"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq nodejs npm >&2
fi

sum=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
dest="$cache/oidc-provider-$sum"
if [ -f "$dest/node_modules/oidc-provider/package.json" ]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/oidc-provider-tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
log "npm ci (oidc-provider, pinned by internal/oidcop/package-lock.json)"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "$dest"
