"""The plugin's shell without a cluster: arguments, gates, frames and the watch loop.

A fake client stands in for :class:`gantry.kube.KubeClient` and a fake clock for time, so
the watch loop runs its polls instantly and deterministically; one test puts a real
KubeClient in front of a port that refuses connections, for the error it really raises.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gantry.kube import ApiError, ClusterConfig, KubeClient, Manifest, Resource
from gantry.kube.resources import MODEL_DEPLOYMENT
from gantry.kubectl_plugin import cli, commands, screen
from gantry.kubectl_plugin.commands import Clock, PluginError, Target
from gantry.rollout import GATE_ANNOTATIONS
from tests.kubectl_plugin.builders import NOW, canary_status, md, ready_status
from tests.support.loopback import refused_port

TARGET = Target("resnet", "ml")


@dataclass
class FakeClient:
    """Answers ``get`` from a script (an object, None for 404, or an exception to raise);
    the last answer repeats. Records merge patches."""

    answers: list[Manifest | Exception | None] = field(default_factory=list)
    patch_error: Exception | None = None
    gets: int = 0
    patches: list[tuple[str, str | None, Manifest]] = field(default_factory=list)

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Manifest | None:
        assert res == MODEL_DEPLOYMENT
        answer = self.answers[min(self.gets, len(self.answers) - 1)]
        self.gets += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def patch_merge(
        self, res: Resource, name: str, namespace: str | None, patch: Manifest, *, sub: str = ""
    ) -> Manifest:
        assert res == MODEL_DEPLOYMENT
        if self.patch_error is not None:
            raise self.patch_error
        self.patches.append((name, namespace, patch))
        return {}


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(now=lambda: NOW, monotonic=lambda: self.t, sleep=self.sleep)


NOT_FOUND = ApiError(404, "NotFound", 'modeldeployments "resnet" not found')
# What KubeClient raises when no connection can be made (a real one is checked against it
# in test_a_kube_client_that_cannot_connect_reads_as_unreachable).
UNREACHABLE = ApiError(503, "Unavailable", "ClientConnectorError: Cannot connect to host")


# --- targets and gates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "name"),
    [
        (["resnet"], "resnet"),
        (["md/resnet"], "resnet"),
        (["md", "resnet"], "resnet"),
        (["MD/resnet"], "resnet"),
        (["mds/resnet"], "resnet"),
        (["modeldeployment/resnet"], "resnet"),
        (["modeldeployments/resnet"], "resnet"),
        (["modeldeployments.serving.gantry.dev/resnet"], "resnet"),
        (["md.serving.gantry.dev", "resnet"], "resnet"),
    ],
)
def test_targets_kubectl_users_write(words: list[str], name: str) -> None:
    assert cli.parse_target(words) == name


@pytest.mark.parametrize(
    ("words", "error"),
    [
        (["deploy/resnet"], "only ModelDeployments"),
        (["pods", "resnet"], "only ModelDeployments"),
        (["md/"], "not a ModelDeployment name"),
        (["md/a/b"], "not a ModelDeployment name"),
        (["md", "a", "b"], "expected md/NAME"),
    ],
)
def test_targets_refused(words: list[str], error: str) -> None:
    with pytest.raises(cli.UsageError, match=error):
        cli.parse_target(words)


def test_gates_are_the_operators() -> None:
    plugin = {commands.gate(v).annotation for v in ("promote", "abort", "pause", "resume")}
    assert plugin == set(GATE_ANNOTATIONS)


@pytest.mark.parametrize(
    ("verb", "step", "value"),
    [("promote", False, "true"), ("promote", True, "step"), ("abort", False, "true")],
)
def test_gate_values(verb: str, step: bool, value: str) -> None:
    assert commands.gate(verb, step=step).value == value


def test_unknown_gate() -> None:
    with pytest.raises(ValueError, match="no gate"):
        commands.gate("retry")


async def test_request_gate_merge_patches_the_annotation() -> None:
    client = FakeClient()
    text = await commands.request_gate(client, TARGET, commands.gate("promote", step=True))
    assert client.patches == [
        ("resnet", "ml", {"metadata": {"annotations": {"serving.gantry.dev/promote": "step"}}})
    ]
    assert "promote (current step only) requested" in text
    assert "serving.gantry.dev/promote=step" in text


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (NOT_FOUND, 'modeldeployment "resnet" in namespace "ml" not found'),
        (ApiError(403, "Forbidden", "cannot patch"), "the API server refused: 403 Forbidden"),
        (UNREACHABLE, "cannot reach the API server"),
        (
            ApiError(503, "ServiceUnavailable", "etcd is down"),
            "the API server refused: 503 ServiceUnavailable",
        ),
    ],
)
async def test_request_gate_failures(error: Exception, message: str) -> None:
    client = FakeClient(patch_error=error)
    with pytest.raises(PluginError, match=message):
        await commands.request_gate(client, TARGET, commands.gate("abort"))


# --- frames ----------------------------------------------------------------------------------


def test_frames_on_a_terminal_repaint_in_place() -> None:
    first = screen.frame(["a", "b"], tty=True, first=True)
    later = screen.frame(["a"], tty=True, first=False)
    assert first == "\x1b[2J\x1b[Ha\x1b[K\nb\x1b[K\n\x1b[J"
    assert later == "\x1b[Ha\x1b[K\n\x1b[J"


def test_frames_elsewhere_are_plain_text_one_after_another() -> None:
    assert screen.frame(["a", "b"], tty=False, first=True) == "a\nb\n"
    assert screen.frame(["a"], tty=False, first=False) == "\na\n"


# --- get and watch ---------------------------------------------------------------------------


async def test_a_kube_client_that_cannot_connect_reads_as_unreachable() -> None:
    with refused_port() as port:
        config = ClusterConfig(server=f"http://127.0.0.1:{port}")
        async with KubeClient(config, field_manager=commands.FIELD_MANAGER, timeout=5) as kube:
            with pytest.raises(ApiError) as raised:
                await kube.get(MODEL_DEPLOYMENT, TARGET.name, TARGET.namespace)
            assert (raised.value.status, raised.value.reason) == (
                UNREACHABLE.status,
                UNREACHABLE.reason,
            )
            with pytest.raises(
                PluginError, match="cannot reach the API server: ClientConnectorError"
            ):
                await commands.fetch(kube, TARGET)


async def test_get_draws_once() -> None:
    out = io.StringIO()
    await commands.get(
        FakeClient([md(status=ready_status())]), TARGET, out, clock=FakeTime().clock()
    )
    assert out.getvalue().startswith("Name:            resnet\n")
    assert "\x1b" not in out.getvalue()


async def test_get_of_a_missing_object() -> None:
    with pytest.raises(PluginError, match='"resnet" in namespace "ml" not found'):
        await commands.get(FakeClient([None]), TARGET, io.StringIO())


async def test_watch_elsewhere_writes_a_frame_per_change_until_its_duration() -> None:
    a, b = md(status=canary_status()), md(status=ready_status())
    b_again = {**b, "metadata": {**b["metadata"], "managedFields": [{"manager": "x"}]}}
    client = FakeClient([a, a, b, b_again])
    time, out = FakeTime(), io.StringIO()
    await commands.watch(client, TARGET, out, tty=False, duration=5, clock=time.clock())
    text = out.getvalue()
    assert text.count("Name:            resnet") == 2
    assert text.index("◌ Progressing") < text.index("✔ Ready")
    assert "\x1b" not in text
    assert time.sleeps == [1.0] * 5
    assert client.gets == 6  # the first read, then one per second


async def test_watch_on_a_terminal_repaints_every_poll() -> None:
    obj = md(status=ready_status())
    time, out = FakeTime(), io.StringIO()
    await commands.watch(FakeClient([obj]), TARGET, out, tty=True, duration=2.5, clock=time.clock())
    text = out.getvalue()
    assert text.count("\x1b[H") == 4  # at 0, 1, 2 and 2.5 seconds (the deadline)
    assert text.count("\x1b[2J") == 1
    assert time.sleeps == [1.0, 1.0, 0.5]


async def test_watch_keeps_going_through_errors_and_deletion() -> None:
    obj = md(status=ready_status())
    client = FakeClient([obj, UNREACHABLE, None, obj])
    out = io.StringIO()
    await commands.watch(client, TARGET, out, tty=False, duration=3, clock=FakeTime().clock())
    text = out.getvalue()
    assert 'error: modeldeployment "resnet" in namespace "ml": cannot reach' in text
    assert 'error: modeldeployment "resnet" in namespace "ml" not found; still watching' in text
    assert text.count("Name:            resnet") == 2


async def test_watch_of_a_missing_object_fails_at_once() -> None:
    with pytest.raises(PluginError, match="not found"):
        await commands.watch(FakeClient([None]), TARGET, io.StringIO(), tty=False, duration=5)


# --- the command line ------------------------------------------------------------------------


def _main(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["get", "deploy/x"], "only ModelDeployments"),
        (["get", "md/x", "--timeout", "5"], "--timeout needs --watch"),
        (["get", "md/x", "--watch", "--timeout", "0"], "more than 0 seconds"),
        (["promote"], "required: NAME"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _main(args, capsys)
    assert code == 2
    assert error in err


def test_an_unreadable_kubeconfig_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    code, out, err = _main(["abort", "x", "--kubeconfig", str(missing)], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("error: cannot use the kubeconfig: cannot read kubeconfig")


def test_connection_flags_work_before_and_after_the_command() -> None:
    parser = cli.build_parser()
    before = parser.parse_args(["-n", "ml", "--context", "c", "get", "md/x"])
    after = parser.parse_args(["get", "md/x", "-n", "ml", "--context", "c"])
    for args in (before, after):
        assert (args.namespace, args.context, args.kubeconfig) == ("ml", "c", None)
