#!/usr/bin/env bash
# release.sh: build the plugin for every release platform, reproducibly, write
# SHA256SUMS and print the `vault plugin register` line for each binary.
#
# The same source and Go version give byte-identical binaries wherever they
# are built: no cgo, no file system paths (-trimpath), no build ID, no VCS
# stamp (a source tarball and a git clone build the same bytes), and the
# version comes only from the VERSION argument.
#
# Usage: scripts/release.sh vX.Y.Z
# Env:   DIST (default dist/<version>), PLATFORMS (default "linux/amd64
#        linux/arm64 darwin/amd64 darwin/arm64")
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-}"
if ! [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "usage: make release VERSION=vX.Y.Z (got '${version}')" >&2
  exit 2
fi
plugin=vault-plugin-secrets-bankauth
dist="${DIST:-dist/$version}"
platforms="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"
ldflags="-buildid= -X github.com/bankauth/vault-plugin-secrets-bankauth.Version=$version"

if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "release: warning: the work tree has uncommitted changes; these binaries are not those of a commit" >&2
fi

rm -rf "$dist"
mkdir -p "$dist"
files=()
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  name="${plugin}_${version}_${os}_${arch}"
  echo "release: building $name with $(go env GOVERSION)" >&2
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOFLAGS= \
    go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$dist/$name" ./cmd/$plugin
  files+=("$name")
done
(cd "$dist" && sha256sum "${files[@]}" >SHA256SUMS)

echo "Binaries and SHA256SUMS in $dist. Copy the binary for your platform into Vault's plugin_directory"
echo "(keep its name: versions then sit side by side), then register it:"
while read -r sum name; do
  echo "  $name:"
  echo "    vault plugin register -sha256=$sum -version=$version -command=$name secret bankauth"
done <"$dist/SHA256SUMS"
