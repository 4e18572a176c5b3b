"""In-process tests of the runtime's pieces: config, CLI, fetch, placeholder, libpython."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gantry.runtime.cli import build_parser, config_from_args, main
from gantry.runtime.config import build_config, env_overrides
from gantry.runtime.errors import ConfigError, ModelFetchError
from gantry.runtime.fetch import resolve_model_file
from gantry.runtime.libpython import prefer_own_libpython
from gantry.runtime.placeholder import ERROR_FILE, MAX_MESSAGE_CHARS, write_failed_model
from tests.support.runtime_proc import REPO_ROOT

BASE = {"model": {"uri": "/m.pt"}, "inputs": [{"name": "x", "shape": [4]}]}


def test_layers_merge_nested_and_later_wins() -> None:
    config = build_config(
        {**BASE, "batching": {"max_batch_size": 8, "max_queue_delay_us": 100}},
        {"batching": {"max_batch_size": 32}, "server": {"http_port": 9000}},
    )
    assert config.batching.max_batch_size == 32
    assert config.batching.max_queue_delay_us == 100
    assert config.server.http_port == 9000
    assert config.model.name == "model"


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"batching": {"max_batch_size": 4, "preferred_batch_sizes": [8]}}, "batching:"),
        ({"model": {"uri": "/m.pt", "format": "pytorch"}}, "model:"),
        ({"model": {"uri": "/m.pt", "format": "onnx"}}, "model.format:"),
        ({"server": {"http_port": 1, "grpc_port": 1}}, "server:"),
        ({"inputs": []}, "inputs:"),
        ({"inputs": [{"name": "x", "shape": [0]}]}, "inputs.0:"),
        ({"outputs": [{"name": "x", "shape": [1]}]}, "duplicate"),
        ({"devcie": "cpu"}, "devcie:"),
    ],
)
def test_invalid_config_names_the_field(layer: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(BASE, layer)
    message = str(info.value)
    assert message.startswith("invalid runtime config: ")
    assert field in message or ("must be unique" in message and field == "duplicate")


def test_operator_environment_maps_onto_the_config() -> None:
    env = {
        "GANTRY_MODEL_NAME": "resnet",
        "GANTRY_MODEL_VERSION": "3",
        "GANTRY_MODEL_FORMAT": "torchscript",
        "GANTRY_MODEL_URI": "s3://bucket/resnet",
        "GANTRY_MODEL_REPOSITORY": "/models",
        "GANTRY_HTTP_PORT": "8100",
        "GANTRY_GRPC_PORT": "8101",
        "GANTRY_METRICS_PORT": "8102",
    }
    config = build_config({"inputs": BASE["inputs"]}, env_overrides(env))
    # The init container already fetched s3:// into the repository: serve that.
    assert config.model.uri == "/models/resnet"
    assert (config.model.name, config.model.version) == ("resnet", 3)
    assert (config.server.http_port, config.server.grpc_port) == (8100, 8101)


def test_flags_override_env_which_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text("model: {uri: /file.pt, name: from-file}\ninputs: [{name: x, shape: [2]}]\n")
    args = build_parser().parse_args(
        ["--config", str(path), "--input", "y:int64:-1,3", "--no-dynamic-batching"]
    )
    config = config_from_args(args, {"GANTRY_MODEL_NAME": "from-env"})
    assert config.model.uri == "/file.pt"
    assert config.model.name == "from-env"
    assert [(t.name, t.dtype, t.shape) for t in config.inputs] == [("y", "int64", (-1, 3))]
    assert config.batching.dynamic is False


def test_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["/m.pt", "--input", "x:float32:4", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"]["uri"] == "/m.pt"
    assert printed["batching"]["dynamic"] is True


def test_config_errors_exit_2_with_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["/m.pt"]) == 2
    assert "inputs: Field required" in capsys.readouterr().err


def test_malformed_tensor_flag_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["/m.pt", "--input", "x:complex64:4"])
    assert info.value.code == 2
    assert "dtype must be one of" in capsys.readouterr().err


def test_cli_and_health_do_not_import_torch_or_pytriton() -> None:
    code = (
        "import sys, gantry.runtime, gantry.runtime.cli, gantry.runtime.config, gantry.health;"
        "bad = sorted(m for m in ('torch', 'pytriton') if m in sys.modules);"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_libpython_goes_first_once() -> None:
    libdir = sysconfig.get_config_var("LIBDIR")
    env = {"LD_LIBRARY_PATH": f"/opt/a{os.pathsep}{libdir}{os.pathsep}/opt/b"}
    first = prefer_own_libpython(env)
    if first is None:
        pytest.skip("this interpreter has no shared libpython in LIBDIR (static build)")
    assert first == libdir
    assert env["LD_LIBRARY_PATH"] == os.pathsep.join([libdir, "/opt/a", "/opt/b"])
    prefer_own_libpython(env)
    assert env["LD_LIBRARY_PATH"] == os.pathsep.join([libdir, "/opt/a", "/opt/b"])
    empty: dict[str, str] = {}
    prefer_own_libpython(empty)
    assert empty["LD_LIBRARY_PATH"] == libdir


def test_fetch_local_files_and_triton_layout(tmp_path: Path) -> None:
    repo = tmp_path / "resnet"
    (repo / "3").mkdir(parents=True)
    (repo / "3" / "model.pt").write_bytes(b"x")
    (repo / "model.pt").write_bytes(b"y")
    kw = {"download_dir": tmp_path, "timeout_s": 5.0}
    assert resolve_model_file(str(repo), version=3, **kw) == repo / "3" / "model.pt"
    assert resolve_model_file(str(repo), version=4, **kw) == repo / "model.pt"
    assert resolve_model_file(f"file://{repo}/model.pt", version=1, **kw) == repo / "model.pt"
    (repo / "model.pt").unlink()
    with pytest.raises(ModelFetchError, match=r"holds none of: 4/model.pt"):
        resolve_model_file(str(repo), version=4, **kw)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("s3://bucket/model.pt", "need the optional boto3 client"),
        ("gs://bucket/model.pt", "need the optional google-cloud-storage client"),
        ("ftp://host/model.pt", "unsupported model URI scheme 'ftp'"),
        ("/does/not/exist.pt", "model path /does/not/exist.pt does not exist"),
    ],
)
def test_fetch_errors_are_clear(tmp_path: Path, uri: str, match: str) -> None:
    with pytest.raises(ModelFetchError, match=match):
        resolve_model_file(uri, version=1, download_dir=tmp_path, timeout_s=5.0)


def test_fetch_http_error_names_the_status(tmp_path: Path) -> None:
    # A closed loopback port: the download fails at once, as a ModelFetchError.
    with pytest.raises(ModelFetchError, match=r"download of http://127.0.0.1:9/m.pt failed"):
        resolve_model_file("http://127.0.0.1:9/m.pt", version=1, download_dir=tmp_path, timeout_s=5)


def test_placeholder_keeps_the_message_out_of_the_code(tmp_path: Path) -> None:
    message = 'bad "quotes" \\ and\nnewlines ' + "x" * (2 * MAX_MESSAGE_CHARS)
    model_dir = write_failed_model(tmp_path, "m", 2, message)
    assert (model_dir / "config.pbtxt").read_text().startswith('name: "m"\nbackend: "python"')
    stored = (model_dir / "2" / ERROR_FILE).read_text()
    assert len(stored) == MAX_MESSAGE_CHARS
    assert stored.startswith('bad "quotes" \\ and\nnewlines')
    assert "quotes" not in (model_dir / "2" / "model.py").read_text()
