"""``kubectl gantry``: a kubectl plugin that draws ModelDeployments and works their gates.

Installed as the console script ``kubectl-gantry``; kubectl finds it on PATH::

    kubectl gantry get md/resnet -n ml --watch
    kubectl gantry promote resnet -n ml [--step]
    kubectl gantry abort|pause|resume resnet -n ml

Modules: ``view`` (tolerant reading of the raw object) and ``render`` (text lines), both
pure; ``screen`` (terminal frames, pure); ``commands`` (API reads and patches through
:class:`gantry.kube.KubeClient`); ``cli`` (arguments, exit codes).
"""

from gantry.kubectl_plugin.cli import main

__all__ = ["main"]
