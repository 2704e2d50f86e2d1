"""``$RAY_ADDRESS``: is it an address Ray accepts, and does anything answer there. Checked before
anything is printed, written or started: Ray itself would say so only when the first run is
submitted, or retry an address where nothing listens for minutes."""

from __future__ import annotations

import os
import re

from cityseg_lib.errors import CitysegError

__all__ = ["check_ray_address", "probe"]

_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"


def check_ray_address() -> str:
    """``$RAY_ADDRESS`` (stripped; "" when unset) when it is one Ray accepts: ``auto``, ``HOST:PORT``
    or ``ray://HOST[:PORT]`` (Ray Client); anything else is one line, before anything is printed,
    written or started (Ray itself would say so only when the first run is submitted)."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address or address == "auto":
        return address
    m = re.fullmatch(rf"(ray://)?{_HOST}(?::(\d{{1,5}}))?", address)
    if not m or (m.group(2) is None and not m.group(1)) or not 0 < int(m.group(2) or 1) <= 65535:
        raise CitysegError(f"RAY_ADDRESS={address!r} is not a Ray cluster address (HOST:PORT such as "
                           "10.0.0.1:6379, ray://HOST:10001, or auto); unset it for an embedded cluster")
    return address


def probe(address: str, timeout_s: float = 10.0) -> None:
    """One line when nothing answers at ``HOST:PORT`` of ``address`` (``auto`` is Ray's to find):
    ``ray.init`` would retry such an address for minutes, printing a warning every half minute."""
    import socket

    if address == "auto":
        return
    m = re.fullmatch(rf"(?:ray://)?({_HOST})(?::(\d{{1,5}}))?", address)  # checked by check_ray_address
    host, port = m.group(1), int(m.group(2) or 10001)  # 10001: Ray Client's default port
    try:
        socket.create_connection((host.strip("[]"), port), timeout=timeout_s).close()
    except OSError as err:
        raise CitysegError(f"executor ray: cannot join the cluster at RAY_ADDRESS={address}: nothing answers at "
                           f"{host}:{port} ({err.strerror or type(err).__name__}); start it with `ray start --head` "
                           "there, or unset RAY_ADDRESS for an embedded cluster") from None
