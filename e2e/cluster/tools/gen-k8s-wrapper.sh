#!/usr/bin/env bash
# Regenerates kubernetes/go.mod (+ go.sum) for a Kubernetes release, using only the Go module
# proxy: k8s.io/kubernetes requires its ~33 staging modules at v0.0.0 and replaces them with
# ./staging/src paths, which do not exist when it is a dependency. The wrapper pins every one
# of them to the published v0.M.P tag matching v1.M.P, and copies upstream's go/godebug lines
# so runtime GODEBUG defaults match upstream builds.
#
# Usage: e2e/cluster/tools/gen-k8s-wrapper.sh v1.36.3
set -euo pipefail
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

version=${1:?usage: $0 v1.M.P}
staging=v0.${version#v1.}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$here/kubernetes

gomod=$(cd "$(mktemp -d)" && go mod download -json "k8s.io/kubernetes@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
mods=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\1#p' "$gomod" | sort -u)
[[ -n $mods ]] || { echo "no staging replaces found in $gomod" >&2; exit 1; }

mkdir -p "$dir"
{
  echo '// Wrapper module: builds the Kubernetes control-plane binaries from the published'
  echo '// k8s.io/kubernetes module. Regenerate with ../gen-k8s-wrapper.sh.'
  echo 'module gantry.local/cluster-tools/kubernetes'
  echo
  grep -m1 '^go ' "$gomod"
  if grep -q '^godebug' "$gomod"; then
    echo
    grep -m1 '^godebug' "$gomod"
  fi
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo 'tool ('
  for t in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    printf '\tk8s.io/kubernetes/cmd/%s\n' "$t"
  done
  echo ')'
  echo
  echo 'replace ('
  for m in $mods; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
  echo ')'
} >"$dir/go.mod"
rm -f "$dir/go.sum"
(cd "$dir" && go mod tidy)
echo "wrote $dir/go.mod ($(wc -l <<<"$mods") staging modules pinned to $staging)" >&2
