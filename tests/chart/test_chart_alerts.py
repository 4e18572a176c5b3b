"""Alerts and dashboard queries under promtool (Debian's prometheus package).

``promtool check rules`` on the rule file the chart ships, ``promtool test rules`` on the
unit tests beside this file, and the dashboard's GPU panel, whose GPU branch no test
machine here can feed (no GPU), evaluated over synthetic series as promtool expression tests.
The e2e suite evaluates every panel and alert against a real Prometheus (e2e/test_chart.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from e2e.chart import CHART

HERE = Path(__file__).resolve().parent
RULES = CHART / "files" / "prometheus" / "gantry-alerts.yaml"
DASHBOARD = CHART / "files" / "grafana" / "gantry-modeldeployment.json"
PROMTOOL = shutil.which("promtool") or (
    "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
)
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="no promtool (Debian package 'prometheus'; `make system-deps` installs it)",
)
ALERTS = {
    "GantryOperatorDown",
    "GantryReconcileErrors",
    "GantryCanaryAborted",
    "GantryModelNotReady",
    "GantryRolloutStuck",
}


def promtool(*args: str, cwd: Path = HERE) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_rules_check() -> None:
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", str(RULES))


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == ALERTS
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    fired = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert fired == ALERTS
    assert quiet == ALERTS  # and a moment where each must stay silent


def test_alert_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yaml")


def substitute(expr: str, *, namespace: str, name: str, rate: str = "1m") -> str:
    """Grafana's variables as Grafana substitutes them for one ModelDeployment."""
    return (
        expr.replace("$namespace", namespace)
        .replace("$modeldeployment", name)
        .replace("$__rate_interval", rate)
        .replace("$__range", "10m")
    )


def panel_expr(title_prefix: str) -> str:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    (panel,) = [p for p in panels if p["title"].startswith(title_prefix)]
    (target,) = panel["targets"]
    return str(target["expr"])


def series(metric: str, namespace: str, pod: str, values: str, *, gpu: str = "") -> dict[str, str]:
    """One promtool input series of a pod's Triton metric (``gpu``: its gpu_uuid label)."""
    labels = f'namespace="{namespace}",pod="{pod}"' + (f',gpu_uuid="{gpu}"' if gpu else "")
    return {"series": f"{metric}{{{labels}}}", "values": values}


def test_gpu_panel_shows_gpus_and_falls_back_to_cpu_per_pod(tmp_path: Path) -> None:
    expr = substitute(panel_expr("GPU utilisation"), namespace="ml", name="resnet")
    case = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # Two GPUs in one pod: the busiest one; a CPU-only pod: its CPU.
                    series("nv_gpu_utilization", "ml", "resnet-6d9f-abcde", "0.5x5", gpu="GPU-1"),
                    series("nv_gpu_utilization", "ml", "resnet-6d9f-abcde", "0.75x5", gpu="GPU-2"),
                    series("nv_cpu_utilization", "ml", "resnet-6d9f-abcde", "0.1x5"),
                    series("nv_cpu_utilization", "ml", "resnet-7c8b-fghij", "0.25x5"),
                    # Another ModelDeployment's pod and another namespace: never shown.
                    series("nv_gpu_utilization", "ml", "bert-5b-xyz12", "0.9x5", gpu="GPU-3"),
                    series(
                        "nv_gpu_utilization", "other", "resnet-6d9f-abcde", "0.9x5", gpu="GPU-4"
                    ),
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "3m",
                        "exp_samples": [
                            {"labels": '{pod="resnet-6d9f-abcde"}', "value": 0.75},
                            {"labels": '{pod="resnet-7c8b-fghij"}', "value": 0.25},
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "gpu_test.yaml").write_text(yaml.safe_dump(case))
    assert "SUCCESS" in promtool("test", "rules", "gpu_test.yaml", cwd=tmp_path)


def test_batch_size_and_queue_time_per_revision(tmp_path: Path) -> None:
    batch = substitute(panel_expr("Batch size"), namespace="ml", name="resnet")
    queue = substitute(panel_expr("Queue time"), namespace="ml", name="resnet")
    stable, canary = "resnet-6d9f8b7c5d-abcde", "resnet-3f2a1b-6d9f8b7c5d-fghij"
    series = []
    for pod, per_min in ((stable, 60), (canary, 6)):
        sel = f'namespace="ml",pod="{pod}"'
        series += [
            {"series": f"nv_inference_count{{{sel}}}", "values": f"0+{per_min * 4}x10"},
            {"series": f"nv_inference_exec_count{{{sel}}}", "values": f"0+{per_min}x10"},
            {"series": f"nv_inference_request_success{{{sel}}}", "values": f"0+{per_min}x10"},
            {
                "series": f"nv_inference_queue_duration_us{{{sel}}}",
                "values": f"0+{per_min * 2000}x10",
            },
        ]
    case = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": batch,
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": '{deployment="resnet"}', "value": 4},
                            {"labels": '{deployment="resnet-3f2a1b"}', "value": 4},
                        ],
                    },
                    {
                        "expr": queue,
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": '{deployment="resnet"}', "value": 2},
                            {"labels": '{deployment="resnet-3f2a1b"}', "value": 2},
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "panels_test.yaml").write_text(yaml.safe_dump(case))
    assert "SUCCESS" in promtool("test", "rules", "panels_test.yaml", cwd=tmp_path)
