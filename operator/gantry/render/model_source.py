"""Where the server finds the model: volumes, mounts and the fetch init container.

Every pod sees a Triton model repository; what ``spec.model.uri`` names is the
*model directory* inside it (``config.pbtxt`` plus numeric version folders)::

    /models/<model.name>/config.pbtxt
    /models/<model.name>/<model.version>/model.pt

* ``s3://`` and ``gs://``: an init container copies ``<uri>/config.pbtxt`` (when
  present) and ``<uri>/<version>/`` only, so the pod serves exactly the version
  asked for even when the bucket holds others. Credentials come from the pod's
  service account (IRSA / workload identity) or from ``runtime.env`` entries named
  ``AWS_*``, ``GOOGLE_*`` or ``CLOUDSDK_*`` (plus proxy variables), which are the
  only ones the fetcher sees.
* ``http(s)://``: a ``.tar.gz``/``.tgz``/``.tar`` archive of the model directory
  is unpacked into ``/models/<name>/``; any other URL is one model file, saved as
  the format's default file name (``model.pt``, ``model.onnx``, ``model.plan``,
  ``model.py``) in ``/models/<name>/<version>/``.
* ``pvc://CLAIM/PATH``: the claim is mounted read-only at ``/models/<name>``
  (``PATH`` as subPath); no copy, so large models start fast.
* ``file://PATH``: a model repository already inside the image (the reference
  runtime and images with baked-in models); ``--model-repository=PATH``, no
  volume. hostPath is deliberately not offered: the restricted Pod Security
  Standard forbids it and it would pin pods to nodes.

The fetcher fails loudly (non-zero exit, a message in its termination log) when
nothing arrives at ``/models/<name>/<version>``, instead of letting Triton start
with an empty repository. User input reaches the scripts only through
environment variables, never by string interpolation into shell code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gantry.api.spec import ModelDeploymentSpec, ModelFormat
from gantry.render.security import container_security_context

MODEL_ROOT = "/models"
MODELS_VOLUME = "models"
FETCH_TMP_VOLUME = "fetch-tmp"
FETCH_CONTAINER = "fetch-model"

# Env prefixes the fetcher inherits from runtime.env (object-store config and proxies).
_FETCH_ENV_PREFIXES = ("AWS_", "GOOGLE_", "CLOUDSDK_")
_FETCH_ENV_NAMES = frozenset(
    {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)

MODEL_FILE_NAMES = {
    ModelFormat.TORCHSCRIPT: "model.pt",
    ModelFormat.PYTORCH: "model.pt",
    ModelFormat.ONNX: "model.onnx",
    ModelFormat.TENSORRT: "model.plan",
    ModelFormat.PYTHON: "model.py",
}


@dataclass(frozen=True)
class FetcherImages:
    """Images of the fetch init container per URI scheme (override for mirrors/air gaps)."""

    s3: str = "amazon/aws-cli:2.22.35"
    gs: str = "google/cloud-sdk:506.0.0-slim"
    http: str = "curlimages/curl:8.11.1"


DEFAULT_FETCHERS = FetcherImages()

# The scripts are constants: user input (URI, names) arrives only as environment
# variables, so nothing the user writes is ever parsed as shell code.
_PRELUDE = r"""set -eu
src="${GANTRY_MODEL_URI%/}"
dst="$GANTRY_MODEL_REPOSITORY/$GANTRY_MODEL_NAME"
mkdir -p "$dst"
"""
_CHECK = r"""if [ -z "$(ls -A "$dst/$GANTRY_MODEL_VERSION" 2>/dev/null)" ]; then
  echo "no model files at $dst/$GANTRY_MODEL_VERSION after fetching $GANTRY_MODEL_URI" >&2
  exit 1
fi
"""
S3_SCRIPT = (
    _PRELUDE
    + r"""aws s3 cp --recursive --only-show-errors "$src/$GANTRY_MODEL_VERSION" \
  "$dst/$GANTRY_MODEL_VERSION"
if aws s3 ls "$src/config.pbtxt" >/dev/null 2>&1; then
  aws s3 cp --only-show-errors "$src/config.pbtxt" "$dst/config.pbtxt"
fi
"""
    + _CHECK
)
GS_SCRIPT = (
    _PRELUDE
    + r"""gcloud storage cp --recursive "$src/$GANTRY_MODEL_VERSION" "$dst/"
if gcloud storage ls "$src/config.pbtxt" >/dev/null 2>&1; then
  gcloud storage cp "$src/config.pbtxt" "$dst/config.pbtxt"
fi
"""
    + _CHECK
)
# pipefail where the shell has it (busybox ash, bash; not dash); the check catches the rest.
HTTP_SCRIPT = (
    _PRELUDE
    + r"""(set -o pipefail) 2>/dev/null && set -o pipefail
path="${src%%\?*}"
get() { curl -fsSL --retry 5 --retry-connrefused "$src" "$@"; }
case "$path" in
  *.tar.gz|*.tgz) get | tar -xzf - -C "$dst" ;;
  *.tar) get | tar -xf - -C "$dst" ;;
  *) mkdir -p "$dst/$GANTRY_MODEL_VERSION"
     get -o "$dst/$GANTRY_MODEL_VERSION/$GANTRY_MODEL_FILE" ;;
esac
"""
    + _CHECK
)


@dataclass(frozen=True)
class ModelSource:
    """How one pod gets its model.

    Attributes:
        repository: Path passed to the server as its model repository.
        volumes: Pod volumes to add.
        mounts: Volume mounts of the server container.
        init_containers: Containers that fetch the model before the server starts.
    """

    repository: str
    volumes: tuple[dict[str, Any], ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()
    init_containers: tuple[dict[str, Any], ...] = ()


def model_env(spec: ModelDeploymentSpec, repository: str) -> list[dict[str, str]]:
    """``GANTRY_MODEL_*`` variables: how custom runtimes (``gantry serve``) learn the model."""
    model = spec.model
    return [
        {"name": "GANTRY_MODEL_NAME", "value": model.name},
        {"name": "GANTRY_MODEL_VERSION", "value": model.version},
        {"name": "GANTRY_MODEL_FORMAT", "value": model.format.value},
        {"name": "GANTRY_MODEL_URI", "value": model.uri},
        {"name": "GANTRY_MODEL_REPOSITORY", "value": repository},
    ]


def _fetcher(
    spec: ModelDeploymentSpec, image: str, script: str, extra_env: list[dict[str, str]]
) -> dict[str, Any]:
    inherited = [
        {"name": e.name, "value": e.value}
        for e in spec.runtime.env
        if e.name.startswith(_FETCH_ENV_PREFIXES) or e.name in _FETCH_ENV_NAMES
    ]
    env = [
        *model_env(spec, MODEL_ROOT),
        # The images default to root's HOME; the tools write caches and config under it.
        {"name": "HOME", "value": "/tmp"},
        *extra_env,
        *inherited,
    ]
    return {
        "name": FETCH_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "env": env,
        # requests == limits keeps the pod's QoS Guaranteed (needed for exclusive CPUs
        # and NUMA alignment with the GPU); init containers run alone, so this costs
        # nothing beyond the server's own request.
        "resources": {
            "requests": {"cpu": "1", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": MODELS_VOLUME, "mountPath": MODEL_ROOT},
            {"name": FETCH_TMP_VOLUME, "mountPath": "/tmp"},
        ],
    }


def model_source(
    spec: ModelDeploymentSpec,
    *,
    fetchers: FetcherImages = DEFAULT_FETCHERS,
) -> ModelSource:
    """Volumes, mounts and init containers that put ``spec.model`` where the server reads it.

    Args:
        spec: The ModelDeployment spec.
        fetchers: Fetch images per scheme.
    """
    uri = spec.model.uri
    scheme = uri.split("://", 1)[0]
    if scheme == "file":
        return ModelSource(repository=uri[len("file://") :] or "/")
    if scheme == "pvc":
        parts = urlsplit(uri)
        claim, sub_path = parts.netloc, parts.path.strip("/")
        mount: dict[str, Any] = {
            "name": MODELS_VOLUME,
            "mountPath": f"{MODEL_ROOT}/{spec.model.name}",
            "readOnly": True,
        }
        if sub_path:
            mount["subPath"] = sub_path
        volume = {
            "name": MODELS_VOLUME,
            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
        }
        return ModelSource(repository=MODEL_ROOT, volumes=(volume,), mounts=(mount,))
    if scheme == "s3":
        image, script, extra = fetchers.s3, S3_SCRIPT, []
    elif scheme == "gs":
        image, script, extra = (
            fetchers.gs,
            GS_SCRIPT,
            [{"name": "CLOUDSDK_CONFIG", "value": "/tmp/gcloud"}],
        )
    else:  # http, https
        file_name = MODEL_FILE_NAMES[spec.model.format]
        image, script, extra = (
            fetchers.http,
            HTTP_SCRIPT,
            [{"name": "GANTRY_MODEL_FILE", "value": file_name}],
        )
    return ModelSource(
        repository=MODEL_ROOT,
        volumes=(
            {"name": MODELS_VOLUME, "emptyDir": {}},
            {"name": FETCH_TMP_VOLUME, "emptyDir": {}},
        ),
        mounts=({"name": MODELS_VOLUME, "mountPath": MODEL_ROOT, "readOnly": True},),
        init_containers=(_fetcher(spec, image, script, extra),),
    )
