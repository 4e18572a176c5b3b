"""Certificates and keys for the local control plane, generated with ``cryptography``.

One throwaway CA signs everything: the API server serving certificate (also reused as the serving
certificate of the controller-manager, scheduler and kwok, which only loopback clients reach), the
admin client certificate (O=system:masters, so RBAC's bootstrap policy makes it cluster-admin) and
the front-proxy client certificate for the aggregation layer. ECDSA P-256 keys are used because
they generate in milliseconds and every component (Go crypto/tls, JWT ES256 for service-account
tokens) accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# First address of the service CIDR given to kube-apiserver: in-cluster clients reach the API
# server as https://10.96.0.1, so the serving certificate must name it.
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
FRONT_PROXY_CN = "front-proxy-client"

_VALIDITY = dt.timedelta(days=365)
# Tolerate small clock differences between this process and the Go components.
_BACKDATE = dt.timedelta(minutes=5)

_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_IPS = ("127.0.0.1", "::1", KUBERNETES_SERVICE_IP)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files written by :func:`generate`."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def front_proxy_cert(self) -> Path:
        return self.dir / "front-proxy-client.crt"

    @property
    def front_proxy_key(self) -> Path:
        return self.dir / "front-proxy-client.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def subject_name(cn: str, org: str | None = None) -> x509.Name:
    """``O=org, CN=cn`` (no O when ``org`` is None)."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org is not None:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _leaf_usage(
    builder: x509.CertificateBuilder, eku: list[x509.ObjectIdentifier]
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    )


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh self-signed CA (``CN=gantry-e2e-ca``): its certificate and key."""
    key = _new_key()
    name = subject_name("gantry-e2e-ca")
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def sign_leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    subject: x509.Name,
    eku: list[x509.ObjectIdentifier],
    san: x509.SubjectAlternativeName | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate and its new key, signed by ``ca``, for the usages ``eku``."""
    ca_cert, ca_key = ca
    key = _new_key()
    builder = _leaf_usage(_builder(subject, ca_cert.subject, key), eku).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _serving_san() -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in _DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _IPS]
    return x509.SubjectAlternativeName(names)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def write_pair(
    dir: Path, stem: str, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    """``<stem>.crt`` and ``<stem>.key`` (0600) in ``dir``, as PEM."""
    cert, key = pair
    (dir / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(dir / f"{stem}.key", key)


def generate(dir: Path) -> Pki:
    """Write a fresh CA and all leaf certificates/keys into ``dir``."""
    dir.mkdir(parents=True, exist_ok=True)
    dir.chmod(0o700)
    ca = make_ca()
    write_pair(dir, "ca", ca)
    server_auth = [ExtendedKeyUsageOID.SERVER_AUTH]
    client_auth = [ExtendedKeyUsageOID.CLIENT_AUTH]
    write_pair(
        dir, "apiserver", sign_leaf(ca, subject_name("kube-apiserver"), server_auth, _serving_san())
    )
    write_pair(
        dir, "admin", sign_leaf(ca, subject_name("gantry-admin", "system:masters"), client_auth)
    )
    write_pair(dir, "front-proxy-client", sign_leaf(ca, subject_name(FRONT_PROXY_CN), client_auth))
    sa = _new_key()
    _write_key(dir / "sa.key", sa)
    (dir / "sa.pub").write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(dir)
