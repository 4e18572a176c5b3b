"""Where the API server is and how to authenticate: kubeconfig or in-cluster.

The loading is the ``kubernetes`` package's (``kubernetes.config``), so Gantry reads a
kubeconfig as kubectl does: a ``KUBECONFIG`` list merged (first file wins per name and the
last ``current-context`` wins), exec credential plugins (EKS, GKE, AKS, OIDC login helpers),
auth providers (OIDC), tokens, token files and client certificates, inline or as files. In a
cluster it reads the projected service-account token, which the kubelet rotates.

Tokens expire (an exec plugin's ``expirationTimestamp``, a projected token's hour), so
:meth:`ClusterConfig.current_token` asks the loader again, which re-runs the plugin or
re-reads the token file only when the one it holds is due.
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client import Configuration
from kubernetes.config import incluster_config, kube_config
from kubernetes.config.config_exception import ConfigException

# The loaders are untyped; typed here as Any once, so strict mypy holds everywhere else.
_KubeConfigLoader: Any = kube_config.KubeConfigLoader
_KubeConfigMerger: Any = kube_config.KubeConfigMerger
_InClusterConfigLoader: Any = incluster_config.InClusterConfigLoader

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeConfigError(Exception):
    """The kubeconfig cannot be used."""


class _Credentials:
    """The loader's live ``Configuration``, refreshed under a lock (refreshing may run a
    plugin, and two callers must not run it twice)."""

    def __init__(self, conf: Any) -> None:
        self._conf = conf
        self._lock = threading.Lock()

    def token(self) -> str | None:
        with self._lock:
            hook = self._conf.refresh_api_key_hook
            if hook is not None:
                hook(self._conf)
            return _bearer(self._conf)


@dataclass(frozen=True)
class ClusterConfig:
    """How to reach one API server.

    ``token`` is the bearer token at load time; use :meth:`current_token` for each request
    (or at least each time the server answers 401) where tokens can expire.
    """

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    insecure: bool = False
    namespace: str = "default"
    _credentials: _Credentials | None = field(default=None, compare=False, repr=False)

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    @property
    def refreshes(self) -> bool:
        """Whether the token can change while the process runs (exec plugin, projected token)."""
        return self._credentials is not None

    def current_token(self) -> str | None:
        """The bearer token to send now: refreshed first when the loader says it is due.

        May run an exec credential plugin (a subprocess): call it off the event loop
        (``asyncio.to_thread``) where that matters.

        Raises:
            KubeConfigError: the refresh failed (the plugin exited non-zero, the token file
                vanished).
        """
        if self._credentials is None:
            return self.token
        try:
            return self._credentials.token()
        except (ConfigException, OSError) as exc:
            raise KubeConfigError(f"cannot refresh the API token: {exc}") from exc


def _bearer(conf: Any) -> str | None:
    header = conf.api_key.get("BearerToken") or conf.api_key.get("authorization")
    if not header:
        return None
    scheme, _, value = str(header).partition(" ")
    if scheme.lower() != "bearer":
        raise KubeConfigError(
            f"kubeconfig user authenticates with {scheme!r}; gantry sends bearer tokens or "
            "client certificates only"
        )
    return value.strip()


def _blank_configuration() -> Any:
    # Configuration() copies the process-wide default when one was set; start from nothing.
    return type.__call__(Configuration)


def _named(merged: Any, what: str, name: str) -> Any:
    for item in merged.safe_get(what) or []:
        if item.safe_get("name") == name:
            return item
    raise KubeConfigError(f"kubeconfig has no {what[:-1]} named {name!r}")


def from_kubeconfig(paths: str | os.PathLike[str], *, context: str | None = None) -> ClusterConfig:
    """Read a kubeconfig, or a ``KUBECONFIG``-style list of them (``os.pathsep``-separated).

    Raises:
        KubeConfigError: no readable file, no such context, a credential that cannot be
            loaded (the message names the cause).
    """
    spec = str(paths)
    existing = [p for p in spec.split(os.pathsep) if p and Path(p).expanduser().exists()]
    if not existing:
        raise KubeConfigError(f"cannot read kubeconfig {spec}: no such file")
    try:
        merged = _KubeConfigMerger(os.pathsep.join(existing)).config
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError(f"cannot read kubeconfig {spec}: {exc}") from exc
    if merged is None:
        raise KubeConfigError(f"kubeconfig {spec} is empty")
    context = context or merged.safe_get("current-context")
    if not context:
        raise KubeConfigError(f"kubeconfig {spec} has no current-context")
    ctx = _named(merged, "contexts", context)["context"]
    user_name = ctx.safe_get("user")
    user = _named(merged, "users", user_name)["user"] if user_name else None
    try:
        # config_base_path=None: relative paths resolve against the file that named them.
        # No config_persister: Gantry never writes refreshed tokens into a user's file.
        loader = _KubeConfigLoader(
            config_dict=merged, active_context=context, config_base_path=None
        )
        conf = _blank_configuration()
        loader.load_and_set(conf)
    except Exception as exc:  # the loader raises anything from its plugins and parsers
        raise KubeConfigError(f"kubeconfig {spec}, user {user_name!r}: {exc}") from exc
    token = _bearer(conf)
    if user is not None and "exec" in user and not token and not conf.cert_file:
        # kubernetes.config logs a failed plugin and carries on without credentials.
        raise KubeConfigError(
            f"kubeconfig {spec}, user {user_name!r}: the exec credential plugin "
            f"{user['exec'].safe_get('command')!r} returned no token or certificate"
        )
    return ClusterConfig(
        server=str(conf.host).rstrip("/"),
        ca_file=conf.ssl_ca_cert,
        cert_file=conf.cert_file,
        key_file=conf.key_file,
        token=token,
        insecure=not conf.verify_ssl,
        namespace=str(ctx.safe_get("namespace") or "default"),
        _credentials=_Credentials(conf) if conf.refresh_api_key_hook else None,
    )


def in_cluster(*, service_account_dir: Path | None = None) -> ClusterConfig:
    """The pod's service account; its token file is re-read once a minute as it rotates."""
    sa = service_account_dir or SERVICE_ACCOUNT_DIR
    loader = _InClusterConfigLoader(
        token_filename=str(sa / "token"), cert_filename=str(sa / "ca.crt"), environ=os.environ
    )
    conf = _blank_configuration()
    try:
        loader.load_and_set(conf)
        namespace = (sa / "namespace").read_text().strip()
    except (ConfigException, OSError) as exc:
        raise KubeConfigError(f"in-cluster config: {exc}") from exc
    return ClusterConfig(
        server=str(conf.host),
        ca_file=conf.ssl_ca_cert,
        token=_bearer(conf),
        namespace=namespace or "default",
        _credentials=_Credentials(conf),
    )


def load(kubeconfig: str | None = None, *, context: str | None = None) -> ClusterConfig:
    """Explicit path (or list), else $KUBECONFIG (the whole list), else in-cluster, else
    ~/.kube/config."""
    paths = kubeconfig or os.environ.get("KUBECONFIG", "")
    if paths:
        return from_kubeconfig(paths, context=context)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    return from_kubeconfig(Path(DEFAULT_KUBECONFIG).expanduser(), context=context)
