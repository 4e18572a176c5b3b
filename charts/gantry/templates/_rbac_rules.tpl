{{- /*
What the operator may do, rule by rule, each with the reason it exists. The e2e suite
(e2e/test_chart.py) runs the operator with exactly this identity (a TokenRequest token for
the ServiceAccount) through create -> Ready, edit, canary promote and rollback, delete, and
`kubectl auth can-i` shows what it cannot do. No wildcards, no Secrets: nothing Gantry does
reads a Secret (the Triton token comes in through the pod's environment).
*/ -}}
{{- define "gantry.rules" -}}
# kopf lists and watches ModelDeployments (the operator's only kopf watch); the reconciler
# reads each one afresh before deciding (get) and removes consumed gate annotations
# (serving.gantry.dev/promote...) with a merge patch (patch).
- apiGroups: [serving.gantry.dev]
  resources: [modeldeployments]
  verbs: [get, list, watch, patch]
# The status is written as a merge patch of the status subresource, nothing else.
- apiGroups: [serving.gantry.dev]
  resources: [modeldeployments/status]
  verbs: [patch]
# One Deployment per revision: server-side apply (a PATCH, authorized as patch, and as create
# too when the object does not exist yet: a run without create is refused with 403 "cannot
# create resource"), listed by label at each reconcile, looked up by name for ownership
# conflicts (get), deleted at rollback/promotion (by uid), watched by the child informers.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# Sizes go through /scale under their own field manager, never in the applied manifest.
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [patch]
# The other children, same lifecycle: applied (patch, and create for a new one), listed by
# label, looked up by name before the first apply (a namesake without our ownerReference is a ChildConflict), deleted when the
# spec no longer wants them, watched by the child informers.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
# Gateway API weights (trafficRouting: gatewayAPI).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
# KEDA-driven scaling (scaling through a ScaledObject instead of an HPA).
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, delete]
# Pods are only read: readiness, placement failures and the model-health probes' targets.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Gantry's transition events and kopf's own (core v1 events: posted, never read or changed).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
