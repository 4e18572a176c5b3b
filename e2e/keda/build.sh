#!/usr/bin/env bash
# KEDA for the tests, from the module pinned in the wrapper beside this script
# (tools/go.mod: github.com/kedacore/keda/v2), into a cache OUTSIDE the repository:
#
#   ${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/keda-<key>/crds/*.yaml
#   ${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/keda-<key>/bin/{keda,keda-adapter}
#
#   crds  KEDA's CRDs (config/crd/bases/ of the module). "go mod download" only: no compile,
#         seconds with a warm module cache.
#   bin   KEDA's operator (cmd/operator) and metrics adapter (cmd/adapter). HEAVY: KEDA's
#         scalers import every cloud SDK, ~2,000 packages; see e2e/keda/README.md for the
#         measured cold time. Never on the default test path: the tests that need it skip
#         unless GANTRY_E2E_KEDA_OPERATOR=1.
#
# <key> hashes the Go version, the wrapper's go.mod and go.sum and this script, so the CRDs and
# the binaries always come from the same KEDA version, a fresh clone on the same machine reuses
# them, and any pin or flag change refetches/rebuilds. crds/ and bin/ are published separately
# (each atomically), so fetching the CRDs never waits for, nor implies, the heavy build.
# The wrapper lives apart from e2e/cluster/tools/ on purpose: everything there feeds the
# control plane's cache key, and KEDA must not rebuild the cluster.
# Progress and timings go to stderr; the last line on stdout is the crds or bin directory.
#
# Usage: e2e/keda/build.sh crds|bin [--print-dir]
#        (--print-dir: print the directory, fetch or build nothing, exit 1 when it is absent)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module=$here/tools

# local: never download a toolchain; -mod=mod: the wrapper carries no vendor dir;
# CGO off: KEDA's Makefile builds its images with CGO=0 too.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# Go's own default (one package per core); GANTRY_GO_BUILD_P lowers or raises it.
GO_BUILD_P=${GANTRY_GO_BUILD_P:-$(nproc)}

KEDA=github.com/kedacore/keda/v2

log() { printf '[keda/build.sh] %s\n' "$*" >&2; }

cache_key() {
  {
    go version
    for f in "$module/go.mod" "$module/go.sum" "$here/build.sh"; do
      printf '%s\n' "${f#"$here"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

# The KEDA version the wrapper pins (go.mod is the source of truth).
keda_version() {
  (cd "$module" && go list -m -f '{{.Version}}' "$KEDA")
}

# Directory of the downloaded KEDA module. Run outside any module, so no go.mod takes part and
# nothing is written to the wrapper's go.sum.
keda_dir() { # version
  local tmp dir
  tmp=$(mktemp -d)
  dir=$(cd "$tmp" && go mod download -json "$KEDA@$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rmdir "$tmp"
  [[ -n $dir && -d $dir ]] || {
    log "go mod download $KEDA@$1 reported no module directory"
    exit 1
  }
  printf '%s\n' "$dir"
}

fetch_crds() { # stage
  local version dir n
  version=$(keda_version)
  dir=$(keda_dir "$version")
  mkdir -p "$1/crds"
  cp "$dir"/config/crd/bases/*.yaml "$1/crds/"
  chmod 644 "$1"/crds/*.yaml # the module cache is read-only; the copies need not be
  n=$(find "$1/crds" -name '*.yaml' | wc -l)
  [[ $n -gt 0 ]] || {
    log "$KEDA@$version has no CRDs under config/crd/bases"
    exit 1
  }
  printf '%s %s\n' "$KEDA" "$version" >"$1/crds/VERSION"
  log "crds: $n files from $KEDA@$version"
}

build_bin() { # stage
  local version start flags
  version=$(keda_version)
  # As KEDA's Makefile (GO_LDFLAGS) stamps it, so "keda --version"-style logs name the release;
  # the proxy has no commit hash, so GitCommit stays empty. -s -w: no debug info, smaller cache.
  flags="-s -w -X=$KEDA/version.Version=${version#v}"
  mkdir -p "$1/bin"
  log "bin: $KEDA@$version; $(go version); go build -p $GO_BUILD_P"
  start=$(date +%s)
  (cd "$module" && go build -p "$GO_BUILD_P" -trimpath -ldflags="$flags" \
    -o "$1/bin/keda" "$KEDA/cmd/operator")
  log "bin: built keda (operator) in $(($(date +%s) - start))s"
  (cd "$module" && go build -p "$GO_BUILD_P" -trimpath -ldflags="$flags" \
    -o "$1/bin/keda-adapter" "$KEDA/cmd/adapter")
  log "bin: built keda-adapter in $(($(date +%s) - start))s since the start"
  printf 'total %ss (go build -p %s, %s cores)\n' "$(($(date +%s) - start))" "$GO_BUILD_P" \
    "$(nproc)" >"$1/bin/build-time.txt"
  {
    go version
    cat "$module/go.mod"
  } >"$1/versions.txt"
}

main() {
  local what=${1:-} marker root key out stage
  case $what in
    crds) marker=crds/VERSION ;;
    bin) marker=bin/keda-adapter ;;
    *)
      printf 'usage: %s crds|bin [--print-dir]\n' "$0" >&2
      exit 2
      ;;
  esac
  root=${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}
  key=$(cache_key)
  out=$root/keda-$key
  if [[ ${2:-} == --print-dir ]]; then
    [[ -e $out/$marker ]] || exit 1
    printf '%s\n' "$out/$what"
    return
  fi
  mkdir -p "$out"
  # Serialize concurrent runs of one kind (two checkouts, or two pytest sessions); the CRD
  # fetch has its own lock so it never queues behind a 15-minute build.
  exec 9>"$root/.keda-$what.lock"
  flock 9
  if [[ -e $out/$marker ]]; then
    log "reusing $out/$what"
    printf '%s\n' "$out/$what"
    return
  fi
  stage=$(mktemp -d "$out/.stage.$what.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  chmod 755 "$stage" # mktemp makes it 0700; nothing here is secret
  if [[ $what == crds ]]; then fetch_crds "$stage"; else build_bin "$stage"; fi
  # Publish atomically: the marker file checked above exists only once the rename is done.
  rm -rf "${out:?}/$what"
  mv "$stage/$what" "$out/$what"
  [[ -e $stage/versions.txt ]] && mv "$stage/versions.txt" "$out/versions.txt"
  rm -rf "$stage"
  trap - EXIT
  log "$what: ready in $out/$what"
  printf '%s\n' "$out/$what"
}

main "$@"
