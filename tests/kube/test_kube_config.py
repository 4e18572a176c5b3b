"""Reading kubeconfig files and in-cluster credentials into a ClusterConfig."""

from __future__ import annotations

import base64
import os
import stat
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gantry.kube import KubeConfigError, load
from gantry.kube import config as kubeconfig
from gantry.kube.config import from_kubeconfig

CA_PEM = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_config(
    path: Path,
    *,
    server: str = "https://10.0.0.1:6443/",
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    current: str | None = "main",
) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u", **(context or {})}},
            {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "other-ns"}},
        ],
    }
    if current:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Inline ``*-data`` is materialized to temp files: keep them in this test's tmp_path."""
    where = tmp_path / "materialized"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(var, raising=False)
    return where


def test_inline_data_is_decoded_into_private_files(tmp_path: Path, private_tmp: Path) -> None:
    path = write_config(
        tmp_path / "kubeconfig",
        cluster={"certificate-authority-data": b64(CA_PEM)},
        user={"client-certificate-data": b64(CERT_PEM), "client-key-data": b64(KEY_PEM)},
    )

    cfg = from_kubeconfig(path)

    assert cfg.server == "https://10.0.0.1:6443"  # trailing slash dropped
    files = {cfg.ca_file: CA_PEM, cfg.cert_file: CERT_PEM, cfg.key_file: KEY_PEM}
    for file, content in files.items():
        assert file is not None
        # kubernetes.config shares one temp file per content across loads of the process.
        assert Path(file).read_bytes() == content
        assert stat.S_IMODE(os.stat(file).st_mode) & 0o077 == 0  # not group/other readable
    assert (cfg.token, cfg.insecure, cfg.namespace) == (None, False, "default")


def test_file_paths_are_relative_to_the_kubeconfig_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "conf"
    path = write_config(
        conf_dir / "kubeconfig",
        cluster={"certificate-authority": "pki/ca.crt"},
        user={"client-certificate": "pki/client.crt", "client-key": str(tmp_path / "abs.key")},
    )
    (conf_dir / "pki").mkdir()
    for file in (
        conf_dir / "pki" / "ca.crt",
        conf_dir / "pki" / "client.crt",
        tmp_path / "abs.key",
    ):
        file.write_bytes(CA_PEM)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    cfg = from_kubeconfig(path)

    assert cfg.ca_file == str((conf_dir / "pki" / "ca.crt").resolve())
    assert cfg.cert_file == str((conf_dir / "pki" / "client.crt").resolve())
    assert cfg.key_file == str((tmp_path / "abs.key").resolve())


def test_inline_data_wins_over_a_path(tmp_path: Path, private_tmp: Path) -> None:
    path = write_config(
        tmp_path / "kubeconfig",
        cluster={"certificate-authority": "ca.crt", "certificate-authority-data": b64(CA_PEM)},
    )
    ca = from_kubeconfig(path).ca_file  # ca.crt does not exist: the inline data was used
    assert ca is not None
    assert Path(ca).read_bytes() == CA_PEM


def test_token_and_token_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("from-file\n")
    with_file = write_config(tmp_path / "a", user={"tokenFile": "secrets/token"})
    assert from_kubeconfig(with_file).token == "from-file"

    both = write_config(tmp_path / "b", user={"token": "inline", "tokenFile": "secrets/token"})
    assert from_kubeconfig(both).token == "inline"


def test_context_namespace_insecure_and_explicit_context(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "kubeconfig",
        cluster={"insecure-skip-tls-verify": True},
        context={"namespace": "ml"},
    )
    cfg = from_kubeconfig(path)
    assert (cfg.namespace, cfg.insecure, cfg.ssl_context()) == ("ml", True, False)
    assert from_kubeconfig(path, context="other").namespace == "other-ns"


def test_a_missing_context_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path / "kubeconfig")
    with pytest.raises(KubeConfigError, match="no context named 'nope'"):
        from_kubeconfig(path, context="nope")


def test_a_missing_current_context_is_reported(tmp_path: Path) -> None:
    path = write_config(tmp_path / "kubeconfig", current=None)
    with pytest.raises(KubeConfigError, match="has no current-context"):
        from_kubeconfig(path)


def test_an_unreadable_file_is_a_kubeconfig_error(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="cannot read kubeconfig"):
        from_kubeconfig(tmp_path / "absent")


def exec_plugin(tmp_path: Path, *, expiry: str | None, fail: bool = False) -> dict[str, Any]:
    """A kubeconfig ``exec`` user: a script printing an ExecCredential whose token counts runs."""
    script = tmp_path / "plugin.py"
    counter = tmp_path / "runs"
    status = {"expirationTimestamp": expiry} if expiry else {}
    script.write_text(
        f"""import json, pathlib, sys
runs = pathlib.Path({str(counter)!r})
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
if {fail!r}:
    sys.exit("plugin: not logged in")
status = dict({status!r}, token=f"exec-token-{{n}}")
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": status}}))
"""
    )
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }


def test_exec_plugin_token_is_cached_until_it_expires(tmp_path: Path) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg = from_kubeconfig(
        write_config(tmp_path / "kubeconfig", user=exec_plugin(tmp_path, expiry=later))
    )
    assert cfg.token == "exec-token-1"
    assert cfg.current_token() == "exec-token-1"  # not due: the plugin is not run again
    assert (tmp_path / "runs").read_text() == "1"


def test_exec_plugin_runs_again_when_its_token_expired(tmp_path: Path) -> None:
    past = "2000-01-01T00:00:00Z"
    cfg = from_kubeconfig(
        write_config(tmp_path / "kubeconfig", user=exec_plugin(tmp_path, expiry=past))
    )
    assert cfg.token == "exec-token-1"
    assert cfg.current_token() == "exec-token-2"
    assert cfg.current_token() == "exec-token-3"


def test_exec_plugin_failure_names_the_user_and_plugin(tmp_path: Path) -> None:
    user = exec_plugin(tmp_path, expiry=None, fail=True)
    with pytest.raises(KubeConfigError, match=r"user 'u'.*exec credential plugin"):
        from_kubeconfig(write_config(tmp_path / "kubeconfig", user=user))


def test_a_kubeconfig_list_is_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clusters from one file, users and the current context from another, as kubectl does."""
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://merged.test"}}]})
    )
    users = tmp_path / "users.yaml"
    users.write_text(
        yaml.safe_dump(
            {
                "users": [{"name": "u", "user": {"token": "from-second"}}],
                "contexts": [{"name": "m", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "m",
            }
        )
    )
    kubeconfig_list(monkeypatch, tmp_path / "absent.yaml", clusters, users)
    cfg = load()
    assert (cfg.server, cfg.token) == ("https://merged.test", "from-second")


def test_in_cluster_token_is_reread_as_it_rotates(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_cluster_env(monkeypatch)
    cfg = load()
    assert cfg.current_token() == "sa-token"
    (kubeconfig.SERVICE_ACCOUNT_DIR / "token").write_text("rotated\n")
    # kubernetes.config re-reads the file once its minute is up; move that minute along.
    later = datetime.now() + timedelta(minutes=2)  # noqa: DTZ005 - the loader's naive clock
    monkeypatch.setattr(
        "kubernetes.config.incluster_config.datetime",
        type(
            "Clock",
            (),
            {
                "datetime": type("D", (), {"now": staticmethod(lambda: later)}),
                "timedelta": timedelta,
            },
        ),
    )
    assert cfg.current_token() == "rotated"


# ---- load(): which source wins ------------------------------------------------------


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A kubeconfig per source, each naming its own server, plus a service account."""
    paths = {
        name: write_config(tmp_path / name / "config", server=f"https://{name}.test")
        for name in ("explicit", "env-first", "env-second", "home")
    }
    monkeypatch.setenv("HOME", str(tmp_path / "home-dir"))
    home_config = tmp_path / "home-dir" / ".kube" / "config"
    home_config.parent.mkdir(parents=True)
    home_config.write_bytes(paths["home"].read_bytes())
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("sa-token\n")
    (sa / "namespace").write_text("gantry-system\n")
    (sa / "ca.crt").write_bytes(CA_PEM)
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", sa)
    return paths


def in_cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")


def kubeconfig_list(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(str(p) for p in paths))


def test_load_explicit_path_wins(sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig_list(monkeypatch, sources["env-first"])
    in_cluster_env(monkeypatch)
    assert load(str(sources["explicit"])).server == "https://explicit.test"


def test_load_kubeconfig_env_takes_the_first_of_a_list(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig_list(monkeypatch, sources["env-first"], sources["env-second"])
    in_cluster_env(monkeypatch)
    assert load().server == "https://env-first.test"


def test_load_in_cluster_before_home(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_cluster_env(monkeypatch)
    cfg = load()
    assert cfg.server == "https://10.96.0.1:443"
    assert (cfg.token, cfg.namespace) == ("sa-token", "gantry-system")
    assert cfg.ca_file == str(kubeconfig.SERVICE_ACCOUNT_DIR / "ca.crt")


def test_load_falls_back_to_home(sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "")
    assert load().server == "https://home.test"


def test_load_with_nothing_anywhere_is_a_kubeconfig_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    with pytest.raises(KubeConfigError, match="cannot read kubeconfig"):
        load()


def test_load_passes_the_context(sources: dict[str, Path]) -> None:
    assert load(str(sources["explicit"]), context="other").namespace == "other-ns"


def test_in_cluster_ipv6_service_host(
    sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert load().server == "https://[fd00:10:96::1]:443"
