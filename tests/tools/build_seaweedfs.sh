#!/usr/bin/env bash
# Build the SeaweedFS server the object-storage tests run the lake against, once per machine.
# Idempotent: prints the binary's path; builds only when neither the repo's git-ignored .tools/ nor the
# per-user cache holds it. `go install` is refused (the module has replace directives), so the module is
# downloaded from the Go module proxy, copied somewhere writable and built in place (~7 min on 2 cores).
set -euo pipefail
VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="${DRG_TOOLS_DIR:-$ROOT/.tools}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/drg-recal"
NAME="weed-$VERSION"
mkdir -p "$TOOLS"
if [ -x "$TOOLS/$NAME" ]; then echo "$TOOLS/$NAME"; exit 0; fi
if [ -x "$CACHE/$NAME" ]; then cp "$CACHE/$NAME" "$TOOLS/$NAME.tmp" && mv "$TOOLS/$NAME.tmp" "$TOOLS/$NAME"; echo "$TOOLS/$NAME"; exit 0; fi
command -v go >/dev/null || { echo "build_seaweedfs: 'go' not found (needs Go >= 1.24)" >&2; exit 1; }
exec 9>"$TOOLS/.weed-build.lock"; flock 9   # two test runs never build at once
if [ -x "$TOOLS/$NAME" ]; then echo "$TOOLS/$NAME"; exit 0; fi
MOD="github.com/seaweedfs/seaweedfs@$VERSION"
DIR="$(go mod download -json "$MOD" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cp -r "$DIR" "$WORK/src" && chmod -R u+w "$WORK/src"
(cd "$WORK/src" && GOFLAGS=-buildvcs=false go build -o "$TOOLS/$NAME.tmp" ./weed) >&2
mv "$TOOLS/$NAME.tmp" "$TOOLS/$NAME"
mkdir -p "$CACHE" && cp "$TOOLS/$NAME" "$CACHE/$NAME.tmp" && mv "$CACHE/$NAME.tmp" "$CACHE/$NAME"
echo "$TOOLS/$NAME"
