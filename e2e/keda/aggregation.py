"""Registering a loopback KEDA adapter with the API server's aggregation layer.

The aggregator proxies ``/apis/external.metrics.k8s.io/...`` to the Service an APIService names.
Without ``--enable-aggregator-routing`` (the local control plane does not set it) it resolves that
Service with ``ResolveCluster`` (k8s.io/apiserver/pkg/util/proxy): a ClusterIP Service means its
cluster IP, which nothing on a kube-proxy-less test host answers; an **ExternalName** Service means
``https://<externalName>:<APIService port>``. So an ExternalName Service naming ``localhost``
reaches an adapter on a loopback port with no change to the API server. (With the routing flag
``ResolveEndpoint`` is used instead, which refuses ExternalName Services and would need an
EndpointSlice holding a loopback address.)

The aggregator checks the adapter's certificate against the APIService's ``caBundle`` under the
name ``<service>.<namespace>.svc``: :func:`e2e.keda.certs.generate` must be given
:func:`service_dns_name`.

An APIService is cluster-wide and only one may serve ``v1beta1.external.metrics.k8s.io``; while
it is registered and its adapter is gone, discovery is incomplete and the namespace controller
cannot finish deleting namespaces. Register one only on a cluster of your own.
"""

from __future__ import annotations

import base64
from typing import Any

from e2e.keda.certs import CertDir

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
API_SERVICE = f"{VERSION}.{GROUP}"
SERVICE = "keda-metrics-apiserver"  # the name KEDA's own manifests use


def service_dns_name(namespace: str, service: str = SERVICE) -> str:
    """The name the aggregator expects in the adapter's certificate."""
    return f"{service}.{namespace}.svc"


def objects(namespace: str, port: int, certs: CertDir, *, service: str = SERVICE) -> list[Any]:
    """The ExternalName Service and the APIService that route the group to ``localhost:port``."""
    ca_bundle = base64.b64encode(certs.ca_cert.read_bytes()).decode()
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"name": service, "namespace": namespace, "port": port},
                "caBundle": ca_bundle,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]
