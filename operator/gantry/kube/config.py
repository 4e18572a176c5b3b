"""Where the API server is and how to authenticate: kubeconfig or in-cluster.

Supports what operators meet in practice: client certificates, bearer tokens
and CA bundles, inline (``*-data``) or as files, and the in-cluster service
account. Exec credential plugins are not supported; run the operator in-cluster
or with a certificate/token kubeconfig.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(Exception):
    """The kubeconfig cannot be used."""


@dataclass(frozen=True)
class ClusterConfig:
    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    insecure: bool = False
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _materialize(data_b64: str, suffix: str) -> str:
    # ssl wants files; inline data is written once to a private temp file.
    fd, path = tempfile.mkstemp(prefix="gantry-", suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64decode(data_b64))
    return path


def _file_or_data(entry: dict[str, Any], key: str, base: Path, suffix: str) -> str | None:
    if entry.get(f"{key}-data"):
        return _materialize(str(entry[f"{key}-data"]), suffix)
    if entry.get(key):
        return str((base / str(entry[key])).resolve())
    return None


def _named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return dict(item.get(what) or {})
    raise KubeConfigError(f"kubeconfig has no {what} named {name!r}")


def from_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> ClusterConfig:
    """Read a kubeconfig file (the first of a KUBECONFIG list)."""
    file = Path(path)
    try:
        doc = yaml.safe_load(file.read_text()) or {}
    except OSError as exc:
        raise KubeConfigError(f"cannot read kubeconfig {file}: {exc}") from exc
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise KubeConfigError(f"kubeconfig {file} has no current-context")
    ctx = _named(doc.get("contexts", []), ctx_name, "context")
    cluster = _named(doc.get("clusters", []), ctx["cluster"], "cluster")
    user = _named(doc.get("users", []), ctx["user"], "user") if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise KubeConfigError(
            f"kubeconfig user {ctx.get('user')!r} uses an exec/auth-provider plugin, which "
            "gantry does not run; use a certificate or token user"
        )
    base = file.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / str(user["tokenFile"])).read_text().strip()
    return ClusterConfig(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=_file_or_data(cluster, "certificate-authority", base, ".crt"),
        cert_file=_file_or_data(user, "client-certificate", base, ".crt"),
        key_file=_file_or_data(user, "client-key", base, ".key"),
        token=token,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
    )


def in_cluster() -> ClusterConfig:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise KubeConfigError("not running in a cluster (KUBERNETES_SERVICE_HOST unset)")
    if ":" in host:  # an IPv6 service address needs brackets in a URL
        host = f"[{host}]"
    return ClusterConfig(
        server=f"https://{host}:{port}",
        ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
        namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
    )


def load(kubeconfig: str | None = None, *, context: str | None = None) -> ClusterConfig:
    """Explicit path, else $KUBECONFIG, else in-cluster, else ~/.kube/config."""
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if path:
        return from_kubeconfig(path, context=context)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    return from_kubeconfig(Path.home() / ".kube" / "config", context=context)
