"""Network namespaces of a test's own: machines apart, on one machine.

A "db" namespace holds a bridge (the switch) with the address DB_ADDRESS; each "host"
namespace is wired to one of its ports by a veth pair, created inside the namespaces,
so the root namespace's network is never touched and every address lives only inside
them. A host is cut off by taking its switch port down: its own link stays configured
and packets to the database go nowhere, as when a cable or a switch fails.

Names carry the test process's id and a random part, so parallel runs do not clash.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

SUBNET = "10.213.0"
DB_ADDRESS = f"{SUBNET}.1"


def usable() -> bool:
    """Whether this machine lets the test make namespaces: root and iproute2's `ip`."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def inside(netns: str | None) -> list[str]:
    """The prefix that runs a command in `netns` (none: in the caller's namespace)."""
    return ["ip", "netns", "exec", netns] if netns else []


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Network:
    """The db namespace and `hosts` host namespaces, once `build` has made them."""

    def __init__(self, hosts: int) -> None:
        prefix = f"dl{os.getpid()}{secrets.token_hex(3)}"
        self.db = f"{prefix}-db"
        self.hosts = [f"{prefix}-h{n}" for n in range(hosts)]

    def build(self) -> None:
        _ip("netns", "add", self.db)
        _ip("-n", self.db, "link", "set", "lo", "up")
        _ip("-n", self.db, "link", "add", "switch", "type", "bridge")
        _ip("-n", self.db, "addr", "add", f"{DB_ADDRESS}/24", "dev", "switch")
        _ip("-n", self.db, "link", "set", "switch", "up")
        for n, host in enumerate(self.hosts):
            _ip("netns", "add", host)
            port = f"port{n}"
            _ip("-n", self.db, "link", "add", port, "type", "veth", "peer", "uplink", "netns", host)
            _ip("-n", self.db, "link", "set", port, "master", "switch", "up")
            _ip("-n", host, "addr", "add", f"{SUBNET}.{n + 2}/24", "dev", "uplink")
            _ip("-n", host, "link", "set", "uplink", "up")

    def cut(self, host: int) -> None:
        _ip("-n", self.db, "link", "set", f"port{host}", "down")

    def heal(self, host: int) -> None:
        _ip("-n", self.db, "link", "set", f"port{host}", "up")

    def remove(self) -> None:
        """Delete every namespace made (with its links); the processes still in one
        keep it alive until they end."""
        for name in [*self.hosts, self.db]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@contextmanager
def network(hosts: int) -> Iterator[Network]:
    """A network of `hosts` hosts and a db namespace, removed at the end, even on failure."""
    made = Network(hosts)
    try:
        made.build()
        yield made
    finally:
        made.remove()
