#!/usr/bin/env bash
# Builds one of the Go helpers the tests run, from its wrapper module beside this script,
# into a cache OUTSIDE the repository:
#
#   argocd   argocd-lua: Argo CD's own Lua engine (github.com/argoproj/argo-cd/v3 util/lua)
#            in the small CLI of e2e/gitops/argocd/. A cold build compiles ~1,400 packages
#            (Argo CD's API types pull in Kubernetes, gRPC and gitops-engine): 5.5 minutes on
#            2 cores with an empty Go build cache and a warm module cache, up to ~13 on a busy
#            machine; the Go build cache makes later rebuilds take seconds.
#   kstatus  kstatus: sigs.k8s.io/cli-utils' pkg/kstatus/status.Compute behind the tiny main
#            of e2e/gitops/kstatus/ (about 30 s cold).
#
#   ${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/gitops/<tool>-<key>/bin/<binary>
#
# <key> hashes the Go version, the wrapper's go.mod, go.sum and main.go and this script, so a
# fresh clone on the same machine reuses the binary and any pin, code or flag change rebuilds
# it. The modules live apart from e2e/cluster/tools/ on purpose: everything there feeds the
# control plane's cache key, and a test helper must not rebuild the cluster.
# Progress and timings go to stderr; the last line on stdout is the bin directory.
#
# Usage: e2e/gitops/build.sh argocd|kstatus [--print-dir]
#        (--print-dir: print the bin dir, build nothing, exit 1 when it is not built yet)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# local: never download a toolchain; -mod=mod: the wrappers carry no vendor dir;
# CGO off: static binaries, as Argo CD and cli-utils build theirs.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# At most two packages compile at once (sized for the 2-core dev/CI machines).
# GANTRY_GO_BUILD_P raises it on bigger machines.
GO_BUILD_P=${GANTRY_GO_BUILD_P:-2}

log() { printf '[gitops/build.sh] %s\n' "$*" >&2; }

cache_key() { # module
  {
    go version
    for f in "$1/go.mod" "$1/go.sum" "$1/main.go" "$here/build.sh"; do
      printf '%s\n' "${f#"$here"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

main() {
  local tool=${1:-} binary module root key out stage start
  case $tool in
    argocd) binary=argocd-lua ;;
    kstatus) binary=kstatus ;;
    *)
      printf 'usage: %s argocd|kstatus [--print-dir]\n' "$0" >&2
      exit 2
      ;;
  esac
  module=$here/$tool
  root=${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/gitops
  key=$(cache_key "$module")
  out=$root/$tool-$key
  if [[ ${2:-} == --print-dir ]]; then
    [[ -x $out/bin/$binary ]] || exit 1
    printf '%s\n' "$out/bin"
    return
  fi
  mkdir -p "$root"
  # Serialize concurrent builds of one tool (two checkouts, or two pytest sessions).
  exec 9>"$root/.$tool.lock"
  flock 9
  if [[ -x $out/bin/$binary ]]; then
    log "reusing $out/bin"
    printf '%s\n' "$out/bin"
    return
  fi
  stage=$(mktemp -d "$root/.stage.$tool-$key.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  chmod 755 "$stage" # mktemp makes it 0700; the binary is not secret
  mkdir -p "$stage/bin"
  log "$tool: cache key $key; $(go version); go build -p $GO_BUILD_P"
  start=$(date +%s)
  (cd "$module" && go build -p "$GO_BUILD_P" -trimpath -ldflags="-s -w" \
    -o "$stage/bin/$binary" .)
  # What was built from: the toolchain and the wrapper's pins (read, never resolved
  # again: resolving would write go.sum).
  {
    go version
    cat "$module/go.mod"
  } >"$stage/versions.txt"
  # Publish atomically: bin/<binary> is the "complete" marker checked above.
  rm -rf "$out"
  mv "$stage" "$out"
  trap - EXIT
  log "$tool: built in $(($(date +%s) - start))s: $out/bin"
  printf '%s\n' "$out/bin"
}

main "$@"
