"""The fetch init container's scripts, run by a real POSIX shell against fake storage CLIs.

``aws``, ``gcloud`` and ``curl`` are replaced by small stubs that map URIs onto a
local directory, so the tests check what the scripts do with the files: the
Triton layout they produce, the version they pick, and their failures.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from gantry.render.model_source import GS_SCRIPT, HTTP_SCRIPT, S3_SCRIPT

SH = shutil.which("sh")

# argv as the scripts use it: aws s3 {cp [--recursive] SRC DST | ls SRC};
# gcloud storage {cp [--recursive] SRC DST | ls SRC}; curl [flags] URL [-o FILE].
STUB = f"""#!{sys.executable}
import os, shutil, sys
store = os.environ["FAKE_STORE"]
tool = os.path.basename(sys.argv[0])
argv = sys.argv[1:]

def local(uri):
    return os.path.join(store, uri.split("://", 1)[1].split("?", 1)[0])

if tool == "curl":
    url = next(a for a in argv if "://" in a)
    out = argv[argv.index("-o") + 1] if "-o" in argv else None
    if not os.path.isfile(local(url)):
        sys.exit(22)
    with open(local(url), "rb") as f:
        data = f.read()
    if out:
        open(out, "wb").write(data)
    else:
        sys.stdout.buffer.write(data)
    sys.exit(0)
words = [a for a in argv[1:] if not a.startswith("--")]
op, src = words[0], local(words[1])
if op == "ls":
    sys.exit(0 if os.path.exists(src) else 1)
dst = words[2]
if os.path.isdir(src):
    if dst.endswith("/"):
        dst = os.path.join(dst, os.path.basename(src.rstrip("/")))
    shutil.copytree(src, dst, dirs_exist_ok=True)
elif os.path.isfile(src):
    shutil.copy(src, dst)
elif tool == "gcloud":
    sys.exit("ERROR: No URLs matched")
# aws s3 cp --recursive of a missing prefix copies nothing and succeeds, as the real one does.
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fake bucket ``models`` holding a Triton model directory with versions 2 and 3."""
    model = tmp_path / "store" / "models" / "resnet50"
    for version in ("2", "3"):
        (model / version).mkdir(parents=True)
        (model / version / "model.pt").write_text(f"weights v{version}")
    (model / "config.pbtxt").write_text('name: "resnet50"')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "gcloud", "curl"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    return tmp_path


def run(
    script: str, root: Path, uri: str, *, fmt_file: str = "model.pt"
) -> subprocess.CompletedProcess[str]:
    assert SH is not None, "a POSIX sh is needed to run the fetch scripts"
    env = {
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_STORE": str(root / "store"),
        "GANTRY_MODEL_URI": uri,
        "GANTRY_MODEL_NAME": "resnet50",
        "GANTRY_MODEL_VERSION": "3",
        "GANTRY_MODEL_FILE": fmt_file,
        "GANTRY_MODEL_REPOSITORY": str(root / "models"),
    }
    return subprocess.run(
        [SH, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("script", "uri"),
    [
        (S3_SCRIPT, "s3://models/resnet50"),
        (S3_SCRIPT, "s3://models/resnet50/"),
        (GS_SCRIPT, "gs://models/resnet50"),
    ],
    ids=["s3", "s3-trailing-slash", "gs"],
)
def test_object_store_fetch_takes_config_and_only_the_asked_version(
    store: Path, script: str, uri: str
) -> None:
    result = run(script, store, uri)
    assert result.returncode == 0, result.stderr
    assert tree(store / "models") == {"resnet50/config.pbtxt", "resnet50/3/model.pt"}


@pytest.mark.parametrize(("script", "scheme"), [(S3_SCRIPT, "s3"), (GS_SCRIPT, "gs")])
def test_object_store_fetch_fails_loudly_when_the_version_is_missing(
    store: Path, script: str, scheme: str
) -> None:
    shutil.rmtree(store / "store" / "models" / "resnet50" / "3")
    result = run(script, store, f"{scheme}://models/resnet50")
    assert result.returncode != 0
    assert scheme == "gs" or "no model files at" in result.stderr


def test_object_store_fetch_works_without_config(store: Path) -> None:
    (store / "store" / "models" / "resnet50" / "config.pbtxt").unlink()
    result = run(S3_SCRIPT, store, "s3://models/resnet50")
    assert result.returncode == 0, result.stderr
    assert tree(store / "models") == {"resnet50/3/model.pt"}


def _tarball(path: Path, members: dict[str, str], *, gz: bool) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize(
    ("name", "gz"), [("resnet50.tar.gz", True), ("resnet50.tgz", True), ("resnet50.tar", False)]
)
def test_http_archive_is_unpacked_into_the_model_directory(
    store: Path, name: str, gz: bool
) -> None:
    _tarball(
        store / "store" / "files.local" / name, {"config.pbtxt": "c", "3/model.pt": "w"}, gz=gz
    )
    result = run(HTTP_SCRIPT, store, f"https://files.local/{name}?X-Amz-Signature=abc")
    assert result.returncode == 0, result.stderr
    assert tree(store / "models") == {"resnet50/config.pbtxt", "resnet50/3/model.pt"}


def test_http_single_file_lands_under_the_version_with_the_format_file_name(store: Path) -> None:
    target = store / "store" / "files.local" / "exported.onnx"
    target.parent.mkdir(parents=True)
    target.write_text("onnx")
    result = run(HTTP_SCRIPT, store, "http://files.local/exported.onnx", fmt_file="model.onnx")
    assert result.returncode == 0, result.stderr
    assert tree(store / "models") == {"resnet50/3/model.onnx"}


def test_http_archive_without_the_version_fails(store: Path) -> None:
    _tarball(
        store / "store" / "files.local" / "m.tar.gz",
        {"config.pbtxt": "c", "1/model.pt": "w"},
        gz=True,
    )
    result = run(HTTP_SCRIPT, store, "https://files.local/m.tar.gz")
    assert result.returncode != 0
    assert "no model files at" in result.stderr


def test_http_download_error_fails(store: Path) -> None:
    result = run(HTTP_SCRIPT, store, "https://files.local/missing.onnx")
    assert result.returncode != 0


def test_uri_is_never_interpreted_by_the_shell(store: Path) -> None:
    result = run(S3_SCRIPT, store, 's3://models/x"; touch pwned; echo "')
    assert result.returncode != 0
    assert not (Path.cwd() / "pwned").exists()
    assert not list(store.rglob("pwned"))
