#!/usr/bin/env bash
# Builds the local control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm, kubeconform) from the pinned Go wrapper
# modules in e2e/cluster/tools/ into a cache OUTSIDE the repository:
#
#   ${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/cluster/<key>/bin
#
# <key> hashes the Go version, every wrapper go.mod/go.sum and this script, so a fresh clone
# on the same machine reuses the binaries and any pin or flag change rebuilds them.
# Progress and timings go to stderr; the last line on stdout is the bin directory.
#
# Usage: e2e/cluster/build.sh [--print-dir]   (--print-dir: print the bin dir, build nothing,
#                                               exit 1 when it is not built yet)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=$here/tools

# local: never download a toolchain; -mod=mod: wrappers carry no vendor dir;
# CGO off: upstream builds all of these static (hack/lib/golang.sh, etcd scripts/build_lib.sh).
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# At most two packages compile at once (sized for the 2-core dev/CI machines; the families
# themselves build one after another). GANTRY_GO_BUILD_P raises it on bigger machines.
GO_BUILD_P=${GANTRY_GO_BUILD_P:-2}

log() { printf '[build.sh] %s\n' "$*" >&2; }

cache_key() {
  {
    go version
    for f in "$tools"/*/go.mod "$tools"/*/go.sum "$here/build.sh"; do
      printf '%s\n' "${f#"$here"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

# Version of a module as resolved in a wrapper module (go.mod is the source of truth).
mod_field() { # dir module template
  (cd "$1" && go list -m -f "$3" "$2")
}

# Runs "go build" for one family and records its wall time.
timed_build() { # family dir go-build-args...
  local family=$1 dir=$2 start end
  shift 2
  start=$(date +%s)
  log "building $family ..."
  (cd "$dir" && go build -p "$GO_BUILD_P" -trimpath "$@")
  end=$(date +%s)
  log "built $family in $((end - start))s"
  printf '%s %ss\n' "$family" "$((end - start))" >>"$stage/build-times.txt"
}

build_kubernetes() {
  local dir=$tools/kubernetes version minor date flags p
  version=$(mod_field "$dir" k8s.io/kubernetes '{{.Version}}')
  minor=${version#v1.}
  minor=${minor%%.*}
  # The proxy reports no commit hash, so use the tag's commit time as the (reproducible) build
  # date and leave gitCommit/gitTreeState unset, as hack/lib/version.sh does without a commit.
  date=$(mod_field "$dir" k8s.io/kubernetes '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}')
  flags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    flags+=" -X $p.buildDate=$date"
  done
  # Tags as in hack/lib/golang.sh for non-debug builds.
  timed_build kubernetes "$dir" -tags=selinux,notest,grpcnotrace -ldflags="$flags" -o "$stage/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  local dir=$tools/etcd version
  version=$(mod_field "$dir" go.etcd.io/etcd/server/v3 '{{.Version}}')
  # The main package is the module root, so name the output explicitly (default would be "v3").
  timed_build etcd "$dir" -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$version" \
    -o "$stage/bin/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  local dir=$tools/kwok version
  version=$(mod_field "$dir" sigs.k8s.io/kwok '{{.Version}}')
  timed_build kwok "$dir" -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${version#v}" \
    -o "$stage/bin/kwok" sigs.k8s.io/kwok/cmd/kwok
  install_kwok_stages "$(mod_field "$dir" sigs.k8s.io/kwok '{{.Dir}}')"
}

# A standalone kwok exits with "no stages found" unless Stages come with --config. Ship the
# default set kwokctl injects (pkg/kwokctl/runtime/cluster.go: node-initialize, lease heartbeat,
# pod ready/complete/delete) from the same module version as the binary.
install_kwok_stages() { # kwok-module-dir
  local s=$1/kustomize/stage f sep=""
  mkdir -p "$stage/share"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    printf '%s' "$sep"
    cat "$s/$f"
    sep=$'---\n'
  done >"$stage/share/kwok-stages.yaml"
}

build_helm() {
  local dir=$tools/helm version k8s minor p flags="-s -w"
  version=$(mod_field "$dir" helm.sh/helm/v3 '{{.Version}}')
  # helm's Makefile stamps the Kubernetes version its default capabilities (used by
  # "helm template" and "helm lint" without a cluster) claim; unstamped, they claim v1.20 and
  # charts with a kubeVersion constraint fail. Upstream stamps its own client-go minor (1.37 for
  # v3.22.0); stamp the minor of the control plane built here so offline rendering agrees with
  # the cluster the charts are installed into.
  k8s=$(mod_field "$tools/kubernetes" k8s.io/kubernetes '{{.Version}}')
  minor=${k8s#v1.}
  minor=${minor%%.*}
  flags+=" -X helm.sh/helm/v3/internal/version.version=$version"
  for p in pkg/chartutil pkg/lint/rules; do
    flags+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$minor"
  done
  timed_build helm "$dir" -ldflags="$flags" -o "$stage/bin/helm" helm.sh/helm/v3/cmd/helm
}

build_kubeconform() {
  local dir=$tools/kubeconform version
  version=$(mod_field "$dir" github.com/yannh/kubeconform '{{.Version}}')
  # As its .goreleaser.yml does; otherwise "kubeconform -v" prints "development".
  timed_build kubeconform "$dir" -ldflags="-s -w -X main.version=$version" \
    -o "$stage/bin/kubeconform" github.com/yannh/kubeconform/cmd/kubeconform
}

main() {
  local root key out lock total_start
  root=${GANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry}/cluster
  key=$(cache_key)
  out=$root/$key
  if [[ ${1:-} == --print-dir ]]; then
    [[ -x $out/bin/kubectl ]] || exit 1
    printf '%s\n' "$out/bin"
    return
  fi
  mkdir -p "$root"
  # Serialize concurrent builds (two checkouts, or pytest racing "make cluster-up").
  lock=$root/.lock
  exec 9>"$lock"
  flock 9
  if [[ -x $out/bin/kubectl ]]; then
    log "reusing $out/bin"
    printf '%s\n' "$out/bin"
    return
  fi
  stage=$(mktemp -d "$root/.stage.$key.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  chmod 755 "$stage" # mktemp makes it 0700; the binaries are not secret
  mkdir -p "$stage/bin"
  total_start=$(date +%s)
  log "cache key $key; $(go version); go build -p $GO_BUILD_P"
  # Serial on purpose: each go build already uses every core for compiling.
  build_etcd
  build_kwok
  build_kubeconform
  build_helm
  build_kubernetes
  printf 'total %ss\n' "$(($(date +%s) - total_start))" >>"$stage/build-times.txt"
  go version >"$stage/go-version.txt"
  # Publish atomically: kubectl is the "complete" marker checked above.
  rm -rf "$out"
  mv "$stage" "$out"
  trap - EXIT
  log "done in $(($(date +%s) - total_start))s: $out/bin"
  printf '%s\n' "$out/bin"
}

main "$@"
