"""The certificates KEDA's processes expect in their ``--cert-dir``, made here instead of by KEDA.

KEDA's operator serves its metrics gRPC service with mutual TLS and the adapter dials it with the
same files: both read ``ca.crt``, ``tls.crt`` and ``tls.key`` from one directory
(pkg/metricsservice/utils/tls.go). In a cluster the operator's cert rotation (``--enable-cert-
rotation``) writes them into a Secret mounted there, and patches the webhook and APIService CA
bundles; run as local processes there is no mount, so this module writes the files and the operator
runs with cert rotation off (its default).

One leaf serves every role: gRPC server and client (both extended key usages) and the adapter's
HTTPS serving certificate, which the API server's aggregator checks against the APIService's
``caBundle`` under the name ``<service>.<namespace>.svc``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

# The cluster's throwaway-CA helpers (ECDSA P-256, backdated, one year), so both PKIs stay alike.
from e2e.cluster.pki import make_ca, sign_leaf, subject_name, write_pair

_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class CertDir:
    """A directory laid out as KEDA's ``--cert-dir`` (the names are KEDA's)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.dir / "tls.crt"

    @property
    def key(self) -> Path:
        return self.dir / "tls.key"


def generate(dir: Path, *, dns_names: Sequence[str] = ()) -> CertDir:
    """Write a fresh CA and one leaf for loopback plus ``dns_names`` into ``dir``.

    Args:
        dir: Created if missing; private (0700), as it holds keys.
        dns_names: Extra names the leaf must carry, e.g. ``keda-adapter.<ns>.svc`` for the
            aggregator.
    """
    dir.mkdir(parents=True, exist_ok=True)
    dir.chmod(0o700)
    ca = make_ca()
    write_pair(dir, "ca", ca)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in (*_LOOPBACK_NAMES, *dns_names)]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _LOOPBACK_IPS]
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = x509.SubjectAlternativeName(names)
    leaf = sign_leaf(ca, subject_name("gantry-e2e-keda"), both, san)
    write_pair(dir, "tls", leaf)
    return CertDir(dir)
