"""Lease leader election (``coordination.k8s.io/v1``) for running Gantry with several replicas.

``lease`` holds the pure rules, ``elector`` the asyncio loop, ``store`` the Lease on the API
server. The reconciler asks :meth:`LeaderElector.is_leader` before each batch of writes.
"""

from gantry.leader.elector import LeaderElector
from gantry.leader.lease import ElectionConfig
from gantry.leader.store import KubeLeaseStore, LeaseConflict, LeaseStore

__all__ = [
    "ElectionConfig",
    "KubeLeaseStore",
    "LeaderElector",
    "LeaseConflict",
    "LeaseStore",
]
