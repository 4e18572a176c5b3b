"""Make Triton's Python backend stub embed *this* interpreter's libpython.

PyTriton serves a Python callable through Triton's Python backend: tritonserver
starts ``triton_python_backend_stub``, a C++ program that embeds CPython and
imports PyTriton's proxy model from this interpreter's ``sys.path`` (PyTriton
puts ``sys.exec_prefix/bin`` on the server's ``PATH``). The wheel's stub for
3.11 is linked against ``libpython3.11.so.1.0`` by soname, and PyTriton only
*appends* its own library directory to ``LD_LIBRARY_PATH``
(``pytriton/server/triton_server.py:_get_env``), so the dynamic loader resolves
that soname through the system search path.

With a pyenv, conda or custom-built interpreter the system copy is a different
patch release from the standard library the stub then imports. Reproduced on
this project's machines (pyenv 3.11.7, Debian's ``libpython3.11.so.1.0`` is
3.11.2): without the fix every model load fails in the stub with::

    multiprocessing/resource_tracker.py ... in ensure_running
        if self._lock._recursion_count() > 1:
    AttributeError: '_thread.RLock' object has no attribute '_recursion_count'

(3.11.7's ``threading`` calls a C method that 3.11.2's ``_thread`` lacks), and
tritonserver exits at startup. The crash is on PyTriton's shared-memory tensor
path (its tensor store starts a multiprocessing resource tracker); with tensors
sent inline that code is not reached, but the stub still runs a mismatched
libpython, so the fix applies either way. With the interpreter's own ``LIBDIR``
first on ``LD_LIBRARY_PATH`` the same model loads. The variable only matters to
child processes, so setting it in our own environment before Triton starts is
enough; PyTriton copies ``os.environ``.
"""

from __future__ import annotations

import logging
import os
import sysconfig
from collections.abc import MutableMapping
from pathlib import Path

__all__ = ["prefer_own_libpython"]

_LOG = logging.getLogger(__name__)


def prefer_own_libpython(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Put the running interpreter's ``LIBDIR`` first on ``LD_LIBRARY_PATH``.

    Idempotent: an existing entry for the directory is moved, not duplicated.

    Args:
        environ: the environment to edit; ``os.environ`` when omitted, which is
            what the Triton child processes inherit.

    Returns:
        The directory put first, or ``None`` when this interpreter has no shared
        libpython there (a static build: the stub then cannot match it anyway,
        and the system library is the only candidate).
    """
    env = os.environ if environ is None else environ
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if not isinstance(libdir, str) or not isinstance(soname, str):
        return None
    if not soname.endswith(".so") and ".so." not in soname:
        # LDLIBRARY names the static archive on --disable-shared builds.
        _LOG.warning("no shared libpython for %s; Triton's Python stub uses the system one", libdir)
        return None
    if not (Path(libdir) / soname).exists():
        _LOG.warning("%s not found in %s; Triton's Python stub uses the system one", soname, libdir)
        return None
    rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p != libdir]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *rest])
    return libdir
