#!/usr/bin/env bash
# Builds argocd-lua, Argo CD's own Lua engine (github.com/argoproj/argo-cd/v3 util/lua) wrapped
# in the small CLI of e2e/gitops/argocd/, into a cache OUTSIDE the repository:
#
#   ${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/gitops/<key>/bin/argocd-lua
#
# <key> hashes the Go version, the wrapper's go.mod, go.sum and main.go and this script, so a
# fresh clone on the same machine reuses the binary and any pin, code or flag change rebuilds it.
# A cold build compiles ~1,400 packages (Argo CD's API types pull in Kubernetes, gRPC and
# gitops-engine): 5.5 minutes on 2 cores with an empty Go build cache and a warm module
# cache, up to ~13 on a busy machine; the Go build cache makes later rebuilds take seconds.
# Progress and timings go to stderr; the last line on stdout is the bin directory.
#
# Usage: e2e/gitops/build.sh [--print-dir]   (--print-dir: print the bin dir, build nothing,
#                                              exit 1 when it is not built yet)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module=$here/argocd

# local: never download a toolchain; -mod=mod: the wrapper carries no vendor dir;
# CGO off: Argo CD builds its binaries static (Makefile: CGO_FLAG=0).
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# At most two packages compile at once (sized for the 2-core dev/CI machines).
# GANTRY_GO_BUILD_P raises it on bigger machines.
GO_BUILD_P=${GANTRY_GO_BUILD_P:-2}

log() { printf '[gitops/build.sh] %s\n' "$*" >&2; }

cache_key() {
  {
    go version
    for f in "$module/go.mod" "$module/go.sum" "$module/main.go" "$here/build.sh"; do
      printf '%s\n' "${f#"$here"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

main() {
  local root key out start version
  root=${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/gitops
  key=$(cache_key)
  out=$root/$key
  if [[ ${1:-} == --print-dir ]]; then
    [[ -x $out/bin/argocd-lua ]] || exit 1
    printf '%s\n' "$out/bin"
    return
  fi
  mkdir -p "$root"
  # Serialize concurrent builds (two checkouts, or two pytest sessions).
  exec 9>"$root/.argocd-lua.lock"
  flock 9
  if [[ -x $out/bin/argocd-lua ]]; then
    log "reusing $out/bin"
    printf '%s\n' "$out/bin"
    return
  fi
  stage=$(mktemp -d "$root/.stage.$key.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  chmod 755 "$stage" # mktemp makes it 0700; the binary is not secret
  mkdir -p "$stage/bin"
  version=$(cd "$module" && go list -m -f '{{.Version}}' github.com/argoproj/argo-cd/v3)
  log "cache key $key; $(go version); argo-cd $version; go build -p $GO_BUILD_P"
  start=$(date +%s)
  (cd "$module" && go build -p "$GO_BUILD_P" -trimpath -ldflags="-s -w" \
    -o "$stage/bin/argocd-lua" .)
  printf 'argocd-lua %ss\n' "$(($(date +%s) - start))" >>"$stage/build-times.txt"
  {
    go version
    printf 'github.com/argoproj/argo-cd/v3 %s\n' "$version"
  } >"$stage/versions.txt"
  # Publish atomically: bin/argocd-lua is the "complete" marker checked above.
  rm -rf "$out"
  mv "$stage" "$out"
  trap - EXIT
  log "done in $(($(date +%s) - start))s: $out/bin"
  printf '%s\n' "$out/bin"
}

main "$@"
