"""The Jupyter kernel manager of the notebooks that ``cityseg report`` runs (papermill's engine)."""

from __future__ import annotations

import os

__all__ = ["kernel_manager_class"]


def kernel_manager_class():
    """The kernel manager of the notebooks: the kernel on local IPC sockets instead of TCP (nothing
    listens on a port, and ipykernel no longer warns "Kernel is running over TCP without
    encryption" on every start), and no interrupt before the shutdown request of a finished
    notebook (jupyter_client sends one, and the kernel logs "KeyboardInterrupt caught in kernel")."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            # sockets of their own for every kernel: kernels started at once (--executor ray) would
            # otherwise race for the same "kernel-ipc-N" names and read each other's messages
            import uuid

            from jupyter_core.paths import jupyter_runtime_dir

            os.makedirs(jupyter_runtime_dir(), exist_ok=True)
            return os.path.join(jupyter_runtime_dir(), f"cityseg-{uuid.uuid4().hex[:12]}-ipc")

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:  # a cell timeout still interrupts
                await super()._async_interrupt_kernel()

    return QuietKernelManager
