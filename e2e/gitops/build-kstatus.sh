#!/usr/bin/env bash
# Builds the kstatus helper (sigs.k8s.io/cli-utils' pkg/kstatus/status.Compute behind a tiny
# main, e2e/gitops/kstatus/) into a cache OUTSIDE the repository:
#
#   ${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/gitops/kstatus-<key>/bin/kstatus
#
# <key> hashes the Go version, the wrapper's go.mod, go.sum and main.go and this script, so
# any pin, source or flag change rebuilds and a fresh clone reuses what is built. The module
# lives apart from e2e/cluster/tools/ on purpose: everything there feeds the control plane's
# cache key, and a helper must not rebuild the cluster.
# Progress goes to stderr; the last line on stdout is the bin directory.
#
# Usage: e2e/gitops/build-kstatus.sh [--print-dir]   (--print-dir: print the bin dir, build
#                                                      nothing, exit 1 when not built yet)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/kstatus

# Same toolchain rules as e2e/cluster/build.sh: never download a toolchain, no vendor dir,
# a static binary.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
GO_BUILD_P=${GANTRY_GO_BUILD_P:-2}

log() { printf '[build-kstatus.sh] %s\n' "$*" >&2; }

cache_key() {
  {
    go version
    for f in "$src/go.mod" "$src/go.sum" "$src/main.go" "$here/build-kstatus.sh"; do
      printf '%s\n' "${f#"$here"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

main() {
  local root key out stage start
  root=${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/gitops
  key=$(cache_key)
  out=$root/kstatus-$key
  if [[ ${1:-} == --print-dir ]]; then
    [[ -x $out/bin/kstatus ]] || exit 1
    printf '%s\n' "$out/bin"
    return
  fi
  mkdir -p "$root"
  # Serialize concurrent builds (two pytest processes, or two checkouts).
  exec 9>"$root/.kstatus.lock"
  flock 9
  if [[ -x $out/bin/kstatus ]]; then
    log "reusing $out/bin"
    printf '%s\n' "$out/bin"
    return
  fi
  stage=$(mktemp -d "$root/.stage.kstatus-$key.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  chmod 755 "$stage" # mktemp makes it 0700; the binary is not secret
  mkdir -p "$stage/bin"
  start=$(date +%s)
  log "cache key $key; $(go version); go build -p $GO_BUILD_P"
  (cd "$src" && go build -p "$GO_BUILD_P" -trimpath -ldflags="-s -w" -o "$stage/bin/kstatus" .)
  go version >"$stage/go-version.txt"
  # Publish atomically: bin/kstatus is the "complete" marker checked above.
  rm -rf "$out"
  mv "$stage" "$out"
  trap - EXIT
  log "built in $(($(date +%s) - start))s: $out/bin"
  printf '%s\n' "$out/bin"
}

main "$@"
