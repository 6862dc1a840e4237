"""RabbitMQ for fault tests: a private node we may restart, or a vhost on the shared broker.

The shared broker (127.0.0.1:5672) serves everybody's test runs: a test may drop the
connections of its own vhost there, never restart it. A test that restarts the broker app
starts a `PrivateBroker`: a node of its own (own name, AMQP, distribution and epmd ports,
Erlang cookie, data and log directories under a temporary directory, no plugins), stopped
and deleted at the end.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.processes import free_port

__all__ = ["Broker", "PrivateBroker", "SharedBroker", "private_broker_scripts"]

# Debian/Ubuntu put the real scripts here; /usr/sbin/rabbitmq-* are wrappers that `su` to the
# rabbitmq user and its cookie (and its node). Elsewhere (Homebrew, generic unix) the scripts
# on PATH are the real ones.
_DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
CTL_TIMEOUT_SECONDS = 60.0


class Broker:
    """What a fault test needs of a broker: vhosts, URLs, and the faults it can inject."""

    description: str
    can_restart: bool = False

    def url(self, vhost: str) -> str:
        raise NotImplementedError

    def add_vhost(self, vhost: str) -> None:
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        self.ctl("delete_vhost", vhost)

    def close_connections(self, vhost: str, reason: str) -> None:
        """Close every client connection of `vhost` (and only of it)."""
        self.ctl("close_all_connections", "-p", vhost, reason)

    def queue_depths(self, vhost: str) -> dict[str, int]:
        """Ready + unacknowledged messages per queue of `vhost`."""
        out = self.ctl("list_queues", "-p", vhost, "--no-table-headers", "name", "messages")
        depths: dict[str, int] = {}
        for line in out.splitlines():
            name, _, count = line.rpartition("\t")
            if name and count.isdigit():
                depths[name] = int(count)
        return depths

    def restart_app(self, down_seconds: float) -> None:
        raise NotImplementedError(f"{self.description}: the broker may not be restarted")

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT_SECONDS) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        """Release what was started (nothing for the shared broker)."""


class SharedBroker(Broker):
    """The machine's broker: own vhosts only; never restarted, never closed for others."""

    def __init__(self, base_url: str = "amqp://guest:guest@127.0.0.1:5672") -> None:
        self.base_url = base_url
        self.description = f"shared broker {base_url.rsplit('@', 1)[-1]} (own vhost)"

    def url(self, vhost: str) -> str:
        return f"{self.base_url}/{vhost}"

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT_SECONDS) -> str:
        return _run(["rabbitmqctl", "-q", *args], os.environ.copy(), timeout)


def private_broker_scripts() -> tuple[Path, Path] | str:
    """(rabbitmq-server, rabbitmqctl) runnable as ourselves, or why there are none."""
    for directory in (_DEBIAN_SCRIPTS, None):
        if directory is None:
            found = shutil.which("rabbitmq-server")
            if found is None or Path(found).parent == Path("/usr/sbin"):
                continue
            directory = Path(found).parent
        server, ctl = directory / "rabbitmq-server", directory / "rabbitmqctl"
        if os.access(server, os.X_OK) and os.access(ctl, os.X_OK):
            return server, ctl
    return (
        "no rabbitmq-server of our own to run (looked in /usr/lib/rabbitmq/bin and on PATH; "
        "a broker in a container cannot be given a second node)"
    )


class PrivateBroker(Broker):
    """A RabbitMQ node of our own on loopback, which faults may restart. `stop()` removes it.

    Everything it has is its own: node name, AMQP port, distribution port, an epmd on a port
    of its own (killed at the end), Erlang cookie, config, data and logs in `workdir`.
    """

    can_restart = True

    def __init__(self, server: Path, ctl: Path, *, vhost: str, workdir: Path | None = None) -> None:
        self.server_script, self.ctl_script = server, ctl
        self.vhost = vhost  # made at boot, guest may use it (no CLI round trips)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="shop-chaos-rabbitmq-"))
        self.node = f"shop_chaos_{uuid.uuid4().hex[:8]}@localhost"
        self.amqp_port = free_port()
        # The CLI tools listen on distribution port + 10000..10010: keep that range valid.
        self.dist_port = _free_port_between(20000, 50000)
        self.epmd_port = _free_port_between(20000, 50000)
        self.description = f"private node {self.node} on 127.0.0.1:{self.amqp_port}"
        self.popen: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "server.log"
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        w = self.workdir
        (w / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq/rabbitmq-env.conf
        (w / "enabled_plugins").write_text("[].\n")
        (w / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}\n"
            # Only the connections of our tests; the machine's limits are someone else's.
            "vm_memory_high_watermark.relative = 0.2\n"
            "disk_free_limit.absolute = 50MB\n"
            f"default_vhost = {self.vhost}\n"
            "default_user = guest\n"
            "default_pass = guest\n"
            "default_permissions.configure = .*\n"
            "default_permissions.read = .*\n"
            "default_permissions.write = .*\n"
        )
        cookie = w / ".erlang.cookie"
        cookie.write_text("".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20)))
        cookie.chmod(0o400)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return {
            **env,
            "HOME": str(w),  # the CLI and the node read the cookie from $HOME
            "RABBITMQ_CONF_ENV_FILE": str(w / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(w / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(w / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(w / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(w / "mnesia"),
            "RABBITMQ_LOG_BASE": str(w / "log"),
            "RABBITMQ_PID_FILE": str(w / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 90.0) -> None:
        epmd = shutil.which("epmd", path=self.env.get("PATH"))
        with self.log.open("ab") as log:
            if epmd is not None:
                # Our child, not a daemon the VM would leave behind; the node finds it running.
                self.epmd = subprocess.Popen(
                    [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                _wait_listening(self.epmd_port, timeout=10)
            self.popen = subprocess.Popen(
                [str(self.server_script)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # The AMQP listener opens last in the boot: a TCP connect is enough, and much cheaper
        # than a CLI round trip (each starts an Erlang VM).
        try:
            _wait_listening(self.amqp_port, timeout, alive=self.popen)
        except RuntimeError as exc:
            raise RuntimeError(
                f"{self.description} did not start ({exc}):\n{self.output()}"
            ) from exc

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{vhost}"

    def add_vhost(self, vhost: str) -> None:
        if vhost != self.vhost:
            super().add_vhost(vhost)

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT_SECONDS) -> str:
        return _run([str(self.ctl_script), "-q", "-n", self.node, *args], self.env, timeout)

    def restart_app(self, down_seconds: float) -> None:
        """`stop_app`, `down_seconds` without a broker, `start_app` (the node stays up)."""
        self.ctl("stop_app")
        time.sleep(down_seconds)
        self.ctl("start_app")

    def stop(self) -> None:
        """Stop the node (gracefully, else killed), its epmd, and delete its directory."""
        try:
            if self.popen is not None and self.popen.poll() is None:
                # The start script turns SIGTERM into a graceful stop of the node.
                self.popen.terminate()
                try:
                    self.popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait(timeout=10)
                    self._kill_beam()
        finally:
            if self.epmd is not None and self.epmd.poll() is None:
                self.epmd.kill()
                self.epmd.wait(timeout=10)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_beam(self) -> None:
        """The node's Erlang VM, by the pid it wrote, if it outlived its start script."""
        try:
            pid = int((self.workdir / "rabbitmq.pid").read_text().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def output(self) -> str:
        texts = [self.log.read_text(errors="replace")[-3000:]] if self.log.exists() else []
        for path in sorted((self.workdir / "log").glob("*.log")):
            texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(texts)


def _run(command: list[str], env: dict[str, str], timeout: float) -> str:
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(command)}: no answer in {timeout:g}s") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _wait_listening(
    port: int, timeout: float, alive: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if alive is not None and alive.poll() is not None:
                raise RuntimeError(f"it exited with {alive.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def _free_port_between(low: int, high: int) -> int:
    """A port in [low, high) nobody listens on now (free_port's are above 32768)."""
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {low} and {high}")
