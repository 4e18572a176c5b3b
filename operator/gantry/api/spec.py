"""The ModelDeployment spec: what a user asks for.

These pydantic models are the single source of truth for the API. The CRD in
``crds/`` is generated from them (``gantry crd``), so every ``description`` here
is what ``kubectl explain`` shows, and every ``x-kubernetes-validations`` rule is
enforced by the API server itself before the operator ever sees the object.
"""

from __future__ import annotations

import itertools
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gantry.api import formats as fmt
from gantry.api.core_types import AFFINITY, ENV_VAR, HPA_BEHAVIOR, TOLERATION, CoreType

GROUP = "serving.gantry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ("md",)

# Durations as Kubernetes users write them elsewhere (e.g. "30s", "1m30s", "500ms").
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
QUANTITY_PATTERN = fmt.QUANTITY_PATTERN
MIG_PROFILE_PATTERN = r"^[1-9][0-9]?g\.[1-9][0-9]*gb(\+me)?$"
MODEL_URI_PATTERN = fmt.MODEL_URI_PATTERN
# Gateway API hostnames (HTTPRoute spec.hostnames): an optional "*." wildcard, then DNS labels.
HOSTNAME_PATTERN = rf"^(\*\.)?{fmt.DNS1123_SUBDOMAIN}$"
DEFAULT_TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:25.01-py3"

_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Return seconds for a duration such as ``"1m30s"``.

    Raises:
        ValueError: the text is not a duration.
    """
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 2m or 1m30s")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_RE.findall(text))


Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry (a CEL rule the API server enforces)."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class _QuantityRange:
    """The range one resource's child accepts, as a schema Field and an AfterValidator.

    The child (a container's resources, an emptyDir's sizeLimit) refuses negative
    values; zero is refused here too, since a zero CPU or memory limit can never run a
    model. The upper bound keeps values in the int64 range the kubelet and scheduler
    compute with.
    """

    def __init__(self, what: str, highest: str, example: str) -> None:
        self.highest = highest
        self.message = f"{what} must be a quantity above 0 and at most {highest}, such as {example}"
        self.field: Any = Field(
            pattern=fmt.QUANTITY_PATTERN,
            max_length=fmt.QUANTITY_MAX_LENGTH,
            json_schema_extra=validations(
                cel(fmt.quantity_cel("0", highest, lowest_inclusive=False), self.message)
            ),
        )
        self.check = AfterValidator(self._in_range)

    def _in_range(self, text: str) -> str:
        if not fmt.quantity_in_range(text, "0", self.highest, lowest_inclusive=False):
            raise ValueError(self.message)
        return text


def _validate_each(core: CoreType) -> AfterValidator:
    def each(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        problems = [f"[{i}]{p}" for i, item in enumerate(items) for p in core.errors(item)]
        if problems:
            raise ValueError("; ".join(problems))
        return items

    return AfterValidator(each)


def _label_map(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not fmt.is_qualified_name(key):
            raise ValueError(f"key {key!r} {fmt.QUALIFIED_NAME_MESSAGE}")
        if not fmt.is_label_value(value):
            raise ValueError(f"value {value!r} of {key!r} {fmt.LABEL_VALUE_MESSAGE}")
    return labels


_CPU = _QuantityRange("cpu", "1M", "500m or 4")
_MEMORY = _QuantityRange("memory", "1Ei", "512Mi or 16Gi")
_SHM = _QuantityRange("shmSize", "1Ei", "1Gi")
CpuQuantity = Annotated[str, _CPU.field, _CPU.check]
MemoryQuantity = Annotated[str, _MEMORY.field, _MEMORY.check]
ShmQuantity = Annotated[str, _SHM.field, _SHM.check]
# Core types Gantry copies into a child, with their generated and refined schemas.
Tolerations = Annotated[
    list[dict[str, Any]],
    WithJsonSchema({"type": "array", "items": TOLERATION.crd_schema(), "maxItems": 64}),
    _validate_each(TOLERATION),
]
Affinity = Annotated[
    dict[str, Any], WithJsonSchema(AFFINITY.crd_schema()), AfterValidator(AFFINITY.validate)
]
HpaBehavior = Annotated[
    dict[str, Any],
    WithJsonSchema(HPA_BEHAVIOR.crd_schema()),
    AfterValidator(HPA_BEHAVIOR.validate),
]
# A map copied into a pod's labels or nodeSelector: label keys to label values.
LabelMap = Annotated[
    dict[str, Annotated[str, Field(max_length=fmt.LABEL_VALUE_MAX)]],
    Field(
        max_length=64,
        json_schema_extra=validations(
            cel(
                f"self.all(k, {fmt.CEL_QUALIFIED_NAME.format('k')})",
                f"every key {fmt.QUALIFIED_NAME_MESSAGE}",
            ),
            cel(
                f"self.all(k, {fmt.CEL_LABEL_VALUE.format('self[k]')})",
                f"every value {fmt.LABEL_VALUE_MESSAGE}",
            ),
        ),
    ),
    AfterValidator(_label_map),
]


class ApiModel(BaseModel):
    """Base for API objects: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class ModelFormat(StrEnum):
    TORCHSCRIPT = "torchscript"
    PYTORCH = "pytorch"
    ONNX = "onnx"
    TENSORRT = "tensorrt"
    PYTHON = "python"


class ModelSpec(ApiModel):
    """The model to serve."""

    name: str = Field(
        description="Model name as Triton serves it (/v2/models/{name}).",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=128,
    )
    uri: str = Field(
        description=(
            "Where the model directory lives: s3://BUCKET[/PATH], gs://BUCKET[/PATH] or "
            "http(s)://HOST/PATH (fetched by an init container into /models), "
            "pvc://CLAIM[/PATH] (mounted read-only) or file:///PATH (inside the image)."
        ),
        pattern=MODEL_URI_PATTERN,
        max_length=2048,
        json_schema_extra=validations(cel(fmt.MODEL_URI_CEL, fmt.MODEL_URI_CEL_MESSAGE)),
    )
    version: str = Field(
        default="1",
        description="Model version; part of the revision, so changing it starts a rollout.",
        pattern=r"^[0-9]+$",
        max_length=16,
    )
    format: ModelFormat = Field(
        default=ModelFormat.TORCHSCRIPT, description="Serialized model format."
    )

    @field_validator("uri")
    @classmethod
    def _no_backsteps(cls, uri: str) -> str:
        if not fmt.model_uri_path_ok(uri):
            raise ValueError(fmt.MODEL_URI_CEL_MESSAGE)
        return uri


_ENV_FIELDS = ENV_VAR.crd_schema()["properties"]


class EnvVar(ApiModel):
    """core/v1 EnvVar, name and value only (valueFrom is not passed to the pods)."""

    # Narrower than the API server's "printable ASCII but '='": names a shell can export.
    name: str = Field(
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
        max_length=256,
        description=_ENV_FIELDS["name"]["description"],
    )
    value: str = Field(
        default="", max_length=32768, description=_ENV_FIELDS["value"]["description"]
    )


class Ports(ApiModel):
    """Container ports of the inference server."""

    http: int = Field(default=8000, ge=1, le=65535, description="KServe v2 HTTP port.")
    grpc: int = Field(default=8001, ge=1, le=65535, description="KServe v2 gRPC port.")
    metrics: int = Field(default=8002, ge=1, le=65535, description="Prometheus metrics port.")


class RuntimeSpec(ApiModel):
    """The serving container."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.ports.http != self.ports.grpc && self.ports.http != self.ports.metrics"
                " && self.ports.grpc != self.ports.metrics",
                "runtime.ports http, grpc and metrics must differ",
                ".ports",
            )
        )
    )

    image: str = Field(
        default=DEFAULT_TRITON_IMAGE,
        description="Container image reference: [REGISTRY/]REPOSITORY[:TAG][@DIGEST], the "
        "repository in lowercase.",
        pattern=fmt.IMAGE_PATTERN,
        max_length=fmt.IMAGE_MAX_LENGTH,
    )
    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list,
        description="Entrypoint override; empty keeps tritonserver with generated flags.",
        max_length=64,
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, description="Extra arguments appended to the server.", max_length=64
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=128,
        description="Extra environment variables of the server container (name and value).",
    )
    ports: Ports = Field(default_factory=Ports)
    shm_size: ShmQuantity = Field(
        default="1Gi",
        description="Size of the memory-backed /dev/shm (Triton passes tensors through it).",
    )
    read_only_root_filesystem: bool = Field(
        default=True,
        description="Mount the server container's root filesystem read-only. Triton and the "
        "reference runtime write only to /tmp and /dev/shm, which are volumes; set false for a "
        "custom image that writes elsewhere. The restricted Pod Security Standard admits "
        "both; the model-fetching init container stays read-only.",
    )

    @model_validator(mode="after")
    def _distinct_ports(self) -> RuntimeSpec:
        ports = self.ports
        if len({ports.http, ports.grpc, ports.metrics}) != 3:
            raise ValueError("runtime.ports http, grpc and metrics must differ")
        return self


class MigSpec(ApiModel):
    """A MIG slice request (nvidia.com/mig-<profile>), exposed with the mixed strategy."""

    profile: str = Field(
        description="MIG profile such as 1g.10gb or 3g.40gb.",
        pattern=MIG_PROFILE_PATTERN,
        max_length=16,
    )
    count: int = Field(default=1, ge=1, le=7, description="Slices per pod.")


class GpuSpec(ApiModel):
    """GPUs per pod and which GPUs qualify."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.count) && has(self.mig))",
                "set either gpu.count (whole GPUs) or gpu.mig (MIG slices), not both",
            )
        )
    )

    count: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Whole GPUs per pod (nvidia.com/gpu); defaults to 1 when mig is not set.",
    )
    mig: MigSpec | None = Field(default=None, description="MIG slices instead of whole GPUs.")
    product: str | None = Field(
        default=None,
        description="Required nvidia.com/gpu.product label (GPU Feature Discovery), e.g. "
        "NVIDIA-H100-80GB-HBM3.",
        # A label value (it becomes a required node affinity value), and not empty.
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=fmt.LABEL_VALUE_MAX,
    )
    min_memory_mi_b: int | None = Field(
        default=None,
        alias="minMemoryMiB",
        ge=1,
        le=1 << 24,
        description="Minimum nvidia.com/gpu.memory (MiB) a node's GPUs must have.",
    )

    @model_validator(mode="after")
    def _whole_or_mig(self) -> GpuSpec:
        if self.count is not None and self.mig is not None:
            raise ValueError("set either gpu.count (whole GPUs) or gpu.mig (MIG slices), not both")
        return self

    @property
    def resource_name(self) -> str:
        if self.mig is None:
            return "nvidia.com/gpu"
        # The device plugin advertises profile "1g.10gb+me" as nvidia.com/mig-1g.10gb.me:
        # "+" is not allowed in a resource name.
        return f"nvidia.com/mig-{self.mig.profile.replace('+', '.')}"

    @property
    def resource_count(self) -> int:
        if self.mig is not None:
            return self.mig.count
        return self.count if self.count is not None else 1


class ResourcesSpec(ApiModel):
    """Compute per pod."""

    gpu: GpuSpec | None = Field(default=None, description="GPUs; omit for a CPU-only model.")
    cpu: CpuQuantity = Field(default="1", description="CPU request and limit.")
    memory: MemoryQuantity = Field(default="2Gi", description="Memory request and limit.")


class PlacementSpec(ApiModel):
    """Scheduling constraints merged with the GPU-derived ones."""

    node_selector: LabelMap = Field(
        default_factory=dict,
        description="Node labels the pods require (pod spec.nodeSelector): label keys to "
        "label values.",
    )
    tolerations: Tolerations = Field(
        default_factory=list,
        description="Extra tolerations (core/v1 Toleration); the nvidia.com/gpu taint is "
        "tolerated automatically for GPU models.",
    )
    affinity: Affinity = Field(
        default_factory=dict,
        description="core/v1 Affinity; its node affinity terms are combined with the GPU ones.",
    )
    priority_class_name: str | None = Field(
        default=None,
        description="PriorityClass of the pods (a DNS subdomain).",
        pattern=rf"^{fmt.DNS1123_SUBDOMAIN}$",
        max_length=fmt.DNS1123_SUBDOMAIN_MAX,
    )


class ScalingMetricType(StrEnum):
    CPU = "cpu"
    QUEUE_TIME_MS = "queueTimeMs"
    INFLIGHT = "inflight"
    GPU_UTILIZATION = "gpuUtilization"


class ScalingMetric(ApiModel):
    # The HPA takes a cpu target as whole percent (rounded; 0 is refused) and the others as
    # a quantity in thousandths (rounded; 0m is refused).
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.type == 'cpu' ? self.target >= 1.0 : self.target >= 0.001",
                "scaling.metric.target must be at least 1 (percent) for cpu and at least "
                "0.001 for the other metrics",
                ".target",
            )
        )
    )

    type: ScalingMetricType = Field(
        default=ScalingMetricType.CPU,
        description="cpu: average CPU utilization percent (resource metric, provider hpa); "
        "queueTimeMs (mean queue time per request), inflight (pending requests), "
        "gpuUtilization (percent): per-pod Triton metrics the builtin scaler reads from the "
        "pods, or custom metrics (nv_inference_queue_duration_ms, "
        "nv_inference_pending_request_count, nv_gpu_utilization) a metrics adapter serves.",
    )
    target: float = Field(
        default=80, gt=0, le=1_000_000, description="Target average value per pod."
    )

    @model_validator(mode="after")
    def _target_survives_rounding(self) -> ScalingMetric:
        lowest = 1.0 if self.type is ScalingMetricType.CPU else 0.001
        if self.target < lowest:
            raise ValueError(
                "scaling.metric.target must be at least 1 (percent) for cpu and at least "
                "0.001 for the other metrics"
            )
        return self


class ScalingProvider(StrEnum):
    BUILTIN = "builtin"
    HPA = "hpa"
    KEDA = "keda"


class KedaScaling(ApiModel):
    """KEDA's ScaledObject settings (field names as KEDA spells them)."""

    server_address: str = Field(
        pattern=r"^https?://.+",
        max_length=512,
        description="Prometheus URL KEDA's prometheus trigger queries (its serverAddress).",
    )
    activation_threshold: float = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="The metric value above which KEDA activates the Deployment from zero "
        "(its activationThreshold); 0: any load activates.",
    )
    polling_interval: int = Field(
        default=30, ge=1, le=3600, description="Seconds between KEDA's checks (pollingInterval)."
    )
    cooldown_period: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="Seconds after the last activation before scaling to zero (cooldownPeriod).",
    )


class ScalingSpec(ApiModel):
    """Replica bounds and who scales between them; autoscaling is on when max > min."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "scaling.minReplicas must be less than or equal to scaling.maxReplicas",
                ".minReplicas",
            ),
            cel(
                "self.minReplicas >= 1 || (has(self.provider) && self.provider == 'keda')",
                "scaling.minReplicas 0 (scale to zero) needs scaling.provider keda",
                ".minReplicas",
            ),
            cel(
                "!has(self.provider) || self.provider != 'keda' || has(self.keda)",
                "scaling.keda.serverAddress is required when scaling.provider is keda",
                ".provider",
            ),
            cel(
                "!has(self.provider) || self.provider != 'builtin' || self.metric.type != 'cpu'",
                "scaling.provider builtin cannot read cpu usage: use scaling.provider hpa for "
                "metric cpu",
                ".provider",
            ),
        )
    )

    provider: ScalingProvider | None = Field(
        default=None,
        description="Who autoscales: builtin (Gantry reads each pod's Triton metrics itself; "
        "the default for queueTimeMs, inflight and gpuUtilization), hpa (a "
        "HorizontalPodAutoscaler; the default for cpu; Triton metrics need a metrics adapter) "
        "or keda (a KEDA ScaledObject with a Prometheus trigger; allows minReplicas 0).",
    )
    min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Fewest replicas the autoscaler may run (0 only with provider keda).",
    )
    max_replicas: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Most replicas the autoscaler may run; greater than minReplicas turns "
        "autoscaling on (spec.replicas and kubectl scale are then ignored).",
    )
    metric: ScalingMetric = Field(
        default_factory=ScalingMetric, description="The per-pod signal the autoscaler tracks."
    )
    behavior: HpaBehavior | None = Field(
        default=None,
        description="autoscaling/v2 HorizontalPodAutoscalerBehavior: passed to the HPA (hpa, "
        "keda) or followed by the builtin scaler the same way.",
    )
    keda: KedaScaling | None = Field(
        default=None, description="KEDA's settings; required when provider is keda."
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                "scaling.minReplicas must be less than or equal to scaling.maxReplicas"
            )
        if self.min_replicas < 1 and self.provider is not ScalingProvider.KEDA:
            raise ValueError("scaling.minReplicas 0 (scale to zero) needs scaling.provider keda")
        if self.provider is ScalingProvider.KEDA and self.keda is None:
            raise ValueError("scaling.keda.serverAddress is required when scaling.provider is keda")
        if self.provider is ScalingProvider.BUILTIN and self.metric.type is ScalingMetricType.CPU:
            raise ValueError(
                "scaling.provider builtin cannot read cpu usage: use scaling.provider hpa for "
                "metric cpu"
            )
        return self

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    @property
    def effective_provider(self) -> ScalingProvider:
        """The provider in force: the spec's, else builtin for Triton metrics, hpa for cpu."""
        if self.provider is not None:
            return self.provider
        if self.metric.type is ScalingMetricType.CPU:
            return ScalingProvider.HPA
        return ScalingProvider.BUILTIN


class PauseStep(ApiModel):
    duration: Duration | None = Field(
        default=None, description="How long to pause; omit to pause until promoted by hand."
    )


class AnalysisStep(ApiModel):
    intervals: int = Field(
        default=1, ge=1, le=100, description="Successful analysis intervals required to pass."
    )


class CanaryStep(ApiModel):
    """One step: exactly one of setWeight, pause, analysis."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "[has(self.setWeight), has(self.pause), has(self.analysis)]"
                ".filter(x, x).size() == 1",
                "each canary step sets exactly one of setWeight, pause, analysis",
            )
        )
    )

    set_weight: int | None = Field(
        default=None, ge=0, le=100, description="Percent of traffic the canary should receive."
    )
    pause: PauseStep | None = Field(
        default=None,
        description="Hold at the current weight for a duration, or until resumed (no duration).",
    )
    analysis: AnalysisStep | None = Field(
        default=None, description="Hold until this many analysis intervals succeed."
    )

    @model_validator(mode="after")
    def _one_of(self) -> CanaryStep:
        chosen = [x for x in (self.set_weight, self.pause, self.analysis) if x is not None]
        if len(chosen) != 1:
            raise ValueError("each canary step sets exactly one of setWeight, pause, analysis")
        return self


class SuccessRateCheck(ApiModel):
    min: float = Field(ge=0, le=1, description="Minimum success ratio per interval (0..1).")


class LatencyCheck(ApiModel):
    max_ms: float = Field(gt=0, description="Maximum latency in milliseconds.")
    quantile: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Quantile from Triton's summaries (needs summary_latencies); omit for the "
        "mean from the duration counters.",
    )


class CustomCheck(ApiModel):
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        max_length=63,
        description="Name of the check (shown in the analysis status).",
    )
    query: str = Field(
        description="PromQL; {{selector}}, {{namespace}}, {{model}}, {{interval}} are filled in.",
        min_length=1,
        max_length=4096,
    )
    min: float | None = Field(default=None, description="Lowest passing value, if any.")
    max: float | None = Field(default=None, description="Highest passing value, if any.")


class AnalysisProviderType(StrEnum):
    PROMETHEUS = "prometheus"
    SCRAPE = "scrape"


class AnalysisProvider(ApiModel):
    type: AnalysisProviderType = Field(
        default=AnalysisProviderType.SCRAPE,
        description="prometheus: PromQL against address (or the operator's default); scrape: "
        "read the pods' Triton /metrics directly.",
    )
    address: str | None = Field(
        default=None, pattern=r"^https?://.+", max_length=512, description="Prometheus URL."
    )


class AnalysisSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.custom) || size(self.custom) == 0 || "
                "(has(self.provider) && self.provider.type == 'prometheus')",
                "analysis.custom checks are PromQL: they need analysis.provider.type prometheus",
                ".custom",
            )
        )
    )

    interval: Duration = Field(default="30s", description="Length of one analysis interval.")
    failure_limit: int = Field(
        default=2, ge=0, le=100, description="Failed intervals tolerated; one more rolls back."
    )
    inconclusive_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Consecutive inconclusive intervals (too little traffic) before the "
        "rollout pauses.",
    )
    min_request_count: int = Field(
        default=10, ge=0, description="Requests per interval below which a verdict is Inconclusive."
    )
    success_rate: SuccessRateCheck | None = Field(
        default_factory=lambda: SuccessRateCheck(min=0.99),
        description="Defaults to min 0.99: without any check, a canary failing every "
        "request would pass on traffic volume alone.",
    )
    latency: LatencyCheck | None = Field(
        default=None, description="Maximum mean (or quantile) request latency per interval."
    )
    custom: list[CustomCheck] = Field(
        default_factory=list, max_length=16, description="Extra PromQL checks (Prometheus only)."
    )
    provider: AnalysisProvider = Field(
        default_factory=AnalysisProvider,
        description="Where metrics come from: Prometheus, or the pods' own /metrics.",
    )

    @model_validator(mode="after")
    def _custom_needs_prometheus(self) -> AnalysisSpec:
        if self.custom and self.provider.type is not AnalysisProviderType.PROMETHEUS:
            raise ValueError(
                "analysis.custom checks are PromQL: they need analysis.provider.type prometheus"
            )
        return self


class TrafficRoutingType(StrEnum):
    REPLICAS = "replicas"
    GATEWAY_API = "gatewayAPI"


class ParentRef(ApiModel):
    """A Gateway the HTTPRoute attaches to (Gateway API ParentReference, kind Gateway)."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Gateway.")
    namespace: str | None = Field(
        default=None,
        description="Namespace of the Gateway; defaults to the ModelDeployment's.",
        pattern=rf"^{fmt.DNS1123_LABEL}$",
        max_length=fmt.DNS1123_LABEL_MAX,
    )
    section_name: str | None = Field(
        default=None,
        description="Listener of the Gateway to attach to.",
        pattern=rf"^{fmt.DNS1123_SUBDOMAIN}$",
        max_length=fmt.DNS1123_SUBDOMAIN_MAX,
    )

    @property
    def parent(self) -> tuple[str, str]:
        return self.name, self.namespace or ""


# The HTTPRoute CRD's own rules on parentRefs, for Gateways (group and kind fixed).
def _same(field: str) -> str:
    return f"has(p1.{field}) == has(p2.{field}) && (!has(p1.{field}) || p1.{field} == p2.{field})"


# "namespace" is a CEL keyword: a field of that name is spelled __namespace__ in a rule.
_SAME_PARENT = f"p1.name == p2.name && {_same('__namespace__')}"
_SECTIONS_MESSAGE = (
    "trafficRouting.parentRefs to the same Gateway must each name a different sectionName"
)


class TrafficRouting(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.type != 'gatewayAPI' || (has(self.parentRefs) && size(self.parentRefs) > 0)",
                "trafficRouting.parentRefs is required for gatewayAPI",
                ".parentRefs",
            ),
            cel(
                f"!has(self.parentRefs) || self.parentRefs.all(p1, self.parentRefs.all(p2, "
                f"!({_SAME_PARENT}) || has(p1.sectionName) == has(p2.sectionName)))",
                _SECTIONS_MESSAGE,
                ".parentRefs",
            ),
            cel(
                f"!has(self.parentRefs) || self.parentRefs.all(p1, self.parentRefs.exists_one("
                f"p2, {_SAME_PARENT} && {_same('sectionName')}))",
                _SECTIONS_MESSAGE,
                ".parentRefs",
            ),
        )
    )

    type: TrafficRoutingType = Field(
        default=TrafficRoutingType.REPLICAS,
        description="replicas: weight approximated by the replica ratio behind one Service; "
        "gatewayAPI: exact weights on an HTTPRoute.",
    )
    parent_refs: list[ParentRef] = Field(
        default_factory=list,
        max_length=16,
        description="Gateways the HTTPRoute attaches to (required for gatewayAPI).",
    )
    hostnames: list[
        Annotated[str, Field(min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)]
    ] = Field(
        default_factory=list,
        max_length=16,
        description="Hostnames of the HTTPRoute (Gateway API: DNS names, '*.' wildcards).",
    )

    @model_validator(mode="after")
    def _gateway_needs_parent(self) -> TrafficRouting:
        if self.type is TrafficRoutingType.GATEWAY_API and not self.parent_refs:
            raise ValueError("trafficRouting.parentRefs is required for gatewayAPI")
        return self

    @model_validator(mode="after")
    def _sections_tell_parents_apart(self) -> TrafficRouting:
        by_parent: dict[tuple[str, str], list[str | None]] = {}
        for ref in self.parent_refs:
            by_parent.setdefault(ref.parent, []).append(ref.section_name)
        for sections in by_parent.values():
            if len(sections) > 1 and (None in sections or len(set(sections)) < len(sections)):
                raise ValueError(_SECTIONS_MESSAGE)
        return self


def _default_steps() -> list[CanaryStep]:
    return [
        CanaryStep(set_weight=10),
        CanaryStep(analysis=AnalysisStep(intervals=2)),
        CanaryStep(set_weight=50),
        CanaryStep(analysis=AnalysisStep(intervals=2)),
    ]


class CanarySpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted() && "
                "self.steps.filter(s, has(s.setWeight)).all(s, self.steps.filter("
                "t, has(t.setWeight) && t.setWeight == s.setWeight).size() == 1)",
                "canary.steps setWeight values must strictly increase",
                ".steps",
            )
        )
    )

    steps: list[CanaryStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=32,
        description="The rollout, in order: setWeight, pause and analysis steps; after the "
        "last step the canary is promoted.",
    )
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec,
        description="How each analysis interval is measured and judged.",
    )
    traffic_routing: TrafficRouting = Field(
        default_factory=TrafficRouting,
        description="How traffic is split: by replica ratio or Gateway API HTTPRoute weights.",
    )

    @field_validator("steps")
    @classmethod
    def _weights_increase(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        weights = [s.set_weight for s in steps if s.set_weight is not None]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError("canary.steps setWeight values must strictly increase")
        return steps


class RolloutStrategy(StrEnum):
    ROLLING = "rolling"
    CANARY = "canary"


class RolloutSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.strategy != 'canary' || has(self.canary)",
                "rollout.canary is required when rollout.strategy is canary",
                ".canary",
            )
        )
    )

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.ROLLING,
        description="rolling: replace pods in place; canary: progressive steps with analysis.",
    )
    canary: CanarySpec | None = Field(
        default=None, description="Canary steps, analysis and routing (strategy canary)."
    )
    progress_deadline_seconds: int = Field(
        default=600,
        ge=30,
        le=2**31 - 1,
        description="Seconds a revision may take to become available.",
    )

    @model_validator(mode="after")
    def _canary_present(self) -> RolloutSpec:
        if self.strategy is RolloutStrategy.CANARY and self.canary is None:
            raise ValueError("rollout.canary is required when rollout.strategy is canary")
        return self


class ModelDeploymentSpec(ApiModel):
    """Desired state of a ModelDeployment."""

    model: ModelSpec
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    placement: PlacementSpec = Field(default_factory=PlacementSpec)
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Fixed replica count (the /scale subresource); ignored while "
        "scaling.maxReplicas > scaling.minReplicas, when an autoscaler owns it.",
    )
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        description="How a new revision replaces the serving one: canary or rolling.",
    )

    def desired_replicas(self) -> int:
        """Replicas the operator itself would set (an autoscaler may override)."""
        if self.replicas is not None:
            return self.replicas
        return self.scaling.min_replicas


__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "AnalysisSpec",
    "CanarySpec",
    "CanaryStep",
    "GpuSpec",
    "KedaScaling",
    "ModelDeploymentSpec",
    "ModelSpec",
    "RolloutSpec",
    "RolloutStrategy",
    "RuntimeSpec",
    "ScalingProvider",
    "ScalingSpec",
    "parse_duration",
]
