"""The KEDA test support that needs no cluster and no KEDA build: certificates, manifests, the
environment KEDA is started with, and the CRD fetch of build.sh (a ``go mod download``)."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from e2e.keda import BUILD_SCRIPT, aggregation, certs, crd_names
from e2e.keda.operator import _keda_env

# --- certificates ----------------------------------------------------------------------------


def _leaf(cert_dir: certs.CertDir) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_dir.cert.read_bytes())


def test_leaf_names_loopback_and_the_given_service(tmp_path: Path) -> None:
    cert_dir = certs.generate(tmp_path / "c", dns_names=["keda-metrics-apiserver.ns.svc"])
    san = _leaf(cert_dir).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "keda-metrics-apiserver.ns.svc",
    }
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    eku = _leaf(cert_dir).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_key_dir_is_private(tmp_path: Path) -> None:
    cert_dir = certs.generate(tmp_path / "c")
    assert cert_dir.dir.stat().st_mode & 0o777 == 0o700
    assert cert_dir.key.stat().st_mode & 0o777 == 0o600


def test_one_leaf_does_mutual_tls_with_itself(tmp_path: Path) -> None:
    """What KEDA's operator (server) and adapter (client) do with the same --cert-dir:
    both sides present the leaf and require the peer's to chain to ca.crt, at 127.0.0.1."""
    cert_dir = certs.generate(tmp_path / "c")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cert_dir.ca_cert)
    server_ctx.load_cert_chain(cert_dir.cert, cert_dir.key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=cert_dir.ca_cert)
    client_ctx.load_cert_chain(cert_dir.cert, cert_dir.key)

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    seen: list[object] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen.append(tls.getpeercert())
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(timeout=10)
    listener.close()
    assert len(seen) == 1
    assert seen[0], "the server saw no verified client certificate"


def test_leaf_is_refused_by_another_ca(tmp_path: Path) -> None:
    ours = certs.generate(tmp_path / "ours")
    theirs = certs.generate(tmp_path / "theirs")
    store = ssl.create_default_context(cafile=theirs.ca_cert)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(ours.cert, ours.key)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, pytest.raises(ssl.SSLError):
            server_ctx.wrap_socket(conn, server_side=True)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with (
        socket.create_connection(listener.getsockname(), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        store.wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(timeout=10)
    listener.close()


# --- the environment KEDA runs with ----------------------------------------------------------


@pytest.mark.parametrize(
    ("namespaces", "extra", "want"),
    [
        (
            ["a"],
            None,
            {"WATCH_NAMESPACE": "a", "KEDA_CLUSTER_OBJECT_NAMESPACE": "a", "POD_NAMESPACE": "a"},
        ),
        (
            ["a", "b"],
            None,
            {"WATCH_NAMESPACE": "a,b", "KEDA_CLUSTER_OBJECT_NAMESPACE": "a", "POD_NAMESPACE": "a"},
        ),
        (
            ["a"],
            {"KEDA_HTTP_DEFAULT_TIMEOUT": "500", "POD_NAMESPACE": "x"},
            {
                "WATCH_NAMESPACE": "a",
                "KEDA_CLUSTER_OBJECT_NAMESPACE": "a",
                "POD_NAMESPACE": "x",
                "KEDA_HTTP_DEFAULT_TIMEOUT": "500",
            },
        ),
    ],
)
def test_keda_env(
    namespaces: list[str], extra: dict[str, str] | None, want: dict[str, str]
) -> None:
    assert _keda_env(namespaces, extra) == want


def test_keda_env_refuses_no_namespace() -> None:
    """An empty WATCH_NAMESPACE is KEDA's "every namespace": on a shared cluster, never."""
    with pytest.raises(ValueError, match="namespaces"):
        _keda_env([], None)


# --- aggregation -----------------------------------------------------------------------------


def test_aggregation_routes_the_group_to_localhost(tmp_path: Path) -> None:
    cert_dir = certs.generate(tmp_path / "c")
    service, api = aggregation.objects("ns", 8443, cert_dir)
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "localhost",
        "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}],
    }
    assert api["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    name = service["metadata"]["name"]
    assert api["spec"]["service"] == {"name": name, "namespace": "ns", "port": 8443}
    assert base64.b64decode(api["spec"]["caBundle"]) == cert_dir.ca_cert.read_bytes()
    assert aggregation.service_dns_name("ns") == f"{name}.ns.svc"


# --- build.sh --------------------------------------------------------------------------------


def _build(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GANTRY_CACHE": str(cache)}
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_build_refuses_an_unknown_target(tmp_path: Path) -> None:
    result = _build("operator", cache=tmp_path)
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_print_dir_builds_nothing(tmp_path: Path) -> None:
    for target in ("crds", "bin"):
        result = _build(target, "--print-dir", cache=tmp_path)
        assert (result.returncode, result.stdout) == (1, "")
    assert list(tmp_path.iterdir()) == []


def test_crds_are_fetched_once_and_name_keda_kinds(tmp_path: Path) -> None:
    first = _build("crds", cache=tmp_path)
    assert first.returncode == 0, first.stderr
    crd_dir = Path(first.stdout.strip().splitlines()[-1])
    names = crd_names(sorted(crd_dir.glob("*.yaml")))
    assert {"scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh"} <= set(
        names
    )
    version = (crd_dir / "VERSION").read_text().split()
    assert version[0] == "github.com/kedacore/keda/v2"
    for path in crd_dir.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] == "CustomResourceDefinition", path
    again = _build("crds", cache=tmp_path)
    assert "reusing" in again.stderr
    assert _build("crds", "--print-dir", cache=tmp_path).stdout.strip() == str(crd_dir)
