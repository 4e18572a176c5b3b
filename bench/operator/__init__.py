"""The operator benchmark: ``python -m bench.operator`` (see :mod:`bench.operator.__main__`).

Modules: ``cluster`` (the bench's namespaces, node and counted identities), ``workload``
(objects and waits), ``bare`` (the baseline, on the operator's own renderers and client),
``counters`` and ``procfs`` (what the API server, the operator's ``/metrics`` and ``/proc``
say), ``phases`` (the measured steps), ``report`` (the table).
"""
