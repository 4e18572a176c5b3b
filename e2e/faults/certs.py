"""A throwaway self-signed certificate for a loopback TLS server, made with ``openssl``."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(directory: Path, name: str, *, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write ``NAME.crt`` and ``NAME.key`` (EC P-256, one day, SAN ``IP:ip``); return both.

    The certificate is its own CA (basicConstraints CA:TRUE), so a kubeconfig can list it as
    ``certificate-authority-data`` and clients verify the server against it alone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=IP:{ip}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    key.chmod(0o600)
    return cert, key
