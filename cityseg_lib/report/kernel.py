"""The Jupyter kernel manager of the notebooks that ``cityseg report`` runs (papermill's engine)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

__all__ = ["kernel_manager_class", "stop_kernels"]

#: The kernel processes (``subprocess.Popen``) this process started, for :func:`stop_kernels`.
_STARTED: set = set()


def stop_kernels() -> None:
    """Kill every kernel this process started that still runs, with its process group (its DataLoader
    workers; the Ray tasks of a kernel end with their driver).

    ``cityseg report`` calls it on Ctrl-C or SIGTERM while notebooks run side by side in threads
    (``--executor ray``): a kernel runs in a session of its own, so the signal never reaches it, and
    the build waited for every notebook of the wave to end (in a chaos test, 46 s of a 60 s smoke
    build; hours on the full profile) before it stopped. A run killed so resumes exactly. Papermill's
    log ("Kernel died while waiting for execute reply", once a kernel) is silenced: the build says
    that it stopped, in one line."""
    import logging

    logging.getLogger("papermill").setLevel(logging.CRITICAL)
    for proc in list(_STARTED):
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                group = os.getpgid(proc.pid)
                if group != os.getpgrp():  # jupyter_client starts kernels in new sessions
                    os.killpg(group, signal.SIGKILL)
                else:
                    proc.kill()


#: Bytes of a Unix socket's path: 108 with the closing NUL on Linux, 104 on macOS; jupyter adds "-N".
_SOCKET_PATH_MAX = 100


def _ipc_base() -> str | None:
    """Where a kernel's IPC sockets go (``BASE-1`` ... ``BASE-5``): the Jupyter runtime folder, else,
    when that path is too long for a socket (a deep ``$HOME``: zmq's "File name too long", and no
    notebook could start), the temporary folder; None when both are too long (then TCP on loopback).

    Sockets of their own for every kernel: kernels started at once (--executor ray) would otherwise
    race for the same "kernel-ipc-N" names and read each other's messages."""
    import tempfile
    import uuid

    from jupyter_core.paths import jupyter_runtime_dir

    name = f"cityseg-{uuid.uuid4().hex[:12]}-ipc"
    for folder in (jupyter_runtime_dir(), tempfile.gettempdir()):
        base = os.path.join(folder, name)
        if len(os.fsencode(base)) + 2 <= _SOCKET_PATH_MAX:
            os.makedirs(folder, exist_ok=True)
            return base
    return None


def kernel_manager_class(stderr_log: Path | None = None):
    """The kernel manager of the notebooks: the kernel on local IPC sockets instead of TCP (nothing
    listens on a port, and ipykernel no longer warns "Kernel is running over TCP without
    encryption" on every start), and no interrupt before the shutdown request of a finished
    notebook (jupyter_client sends one, and the kernel logs "KeyboardInterrupt caught in kernel").

    ``stderr_log``: a file that takes the kernel process's own standard error (this build's, as the
    executed copy is). A cell's output reaches the notebook through Jupyter's messages either way;
    what the process writes itself (ipykernel's log, native libraries' messages, a crash's trace)
    would otherwise land on the terminal of ``cityseg report`` in the middle of its progress lines, e.g. ipykernel's
    "ZMQError: Socket operation on non-socket" traceback after a Ctrl-C.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc" if self._ipc_base() else "tcp"

        @default("ip")
        def _ip_default(self) -> str:
            return self._ipc_base() or "127.0.0.1"

        def _ipc_base(self) -> str | None:
            if not hasattr(self, "_cityseg_ipc"):
                self._cityseg_ipc = _ipc_base()
            return self._cityseg_ipc

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
            if stderr_log is None:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            else:
                stderr_log.parent.mkdir(parents=True, exist_ok=True)
                with open(stderr_log, "wb") as log:  # the kernel keeps a descriptor of its own
                    await super()._async_launch_kernel(kernel_cmd, **kw, stderr=log)
            _STARTED.difference_update([p for p in list(_STARTED) if p.poll() is not None])
            _STARTED.add(self.provisioner.process)

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:  # a cell timeout still interrupts
                await super()._async_interrupt_kernel()

    return QuietKernelManager
