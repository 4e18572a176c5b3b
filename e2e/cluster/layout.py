"""Where the local cluster keeps its files: ``<repo>/.cluster/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from e2e.cluster.pki import Pki


@dataclass(frozen=True)
class Layout:
    """Paths under ``<repo>/.cluster``."""

    dir: Path

    @property
    def bin(self) -> Path:
        return self.dir / "bin"

    @property
    def pki(self) -> Pki:
        return Pki(self.dir / "pki")

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (rotated beside it as ``audit-<time>.log``)."""
        return self.logs / "audit.log"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def kwok_stages(self) -> Path:
        return self.dir / "kwok-stages.yaml"

    def tool(self, name: str) -> str:
        return str(self.bin / name)
