"""The ModelDeployment API (serving.gantry.dev/v1alpha1) as typed models."""

from gantry.api.plan import DeploymentPlan, Owner, Role, ServingPlan
from gantry.api.spec import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    ModelDeploymentSpec,
    parse_duration,
)
from gantry.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    ModelDeploymentStatus,
    Phase,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DeploymentPlan",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "Owner",
    "Phase",
    "Role",
    "ServingPlan",
    "parse_duration",
]
