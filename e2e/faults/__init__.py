"""Fault injection at the API boundary: a seeded, bounded loopback proxy in front of the API
server that answers 429/500/503/409, resets connections, delays answers and cuts watches.

::

    from e2e.faults import Fault, FaultConfig, FaultProxy
    upstream = gantry.kube.config.from_kubeconfig(kubeconfig)
    config = FaultConfig(rates={Fault.HTTP_503: 0.05, Fault.WATCH_CUT: 0.3}, seed=7)
    with FaultProxy(upstream, workdir, config) as proxy:
        proxied = proxy.write_kubeconfig(kubeconfig, workdir / "kubeconfig")
        ...  # run the operator with KUBECONFIG=proxied
        proxy.enabled = False  # faults off, traffic still counted
        print(proxy.stats())
"""

from e2e.faults.plan import Fault, FaultConfig, FaultConfigError
from e2e.faults.proxy import FaultProxy, ProxyStats

__all__ = ["Fault", "FaultConfig", "FaultConfigError", "FaultProxy", "ProxyStats"]
