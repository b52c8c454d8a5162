"""Runtime configuration: explicit arguments, else environment, else the embedded defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from .errors import ConfigurationError

DISCOVERY_BACKENDS = ("mem", "file", "nats")
REQUEST_PLANES = ("inproc", "tcp", "nats")
EVENT_PLANES = ("mem", "nats", "zmq")
# The environment variable of each deployment choice: resolve() and embedders (the C ABI's config) read them here.
ENV_NAMES = {"discovery_backend": "DYN_DISCOVERY_BACKEND", "request_plane": "DYN_REQUEST_PLANE",
             "nats_server": "NATS_SERVER", "file_kv_dir": "DYN_FILE_KV"}


def env_setting(name: str) -> Optional[str]:
    """The environment's value of deployment choice `name` (a key of ENV_NAMES), None when unset or empty."""
    return os.environ.get(ENV_NAMES[name]) or None


@dataclass
class RuntimeConfig:
    """Everything a DistributedRuntime needs to start."""

    discovery_backend: str = "mem"
    request_plane: str = "inproc"
    nats_server: str = "nats://127.0.0.1:4222"
    file_kv_dir: str = "/tmp/dynamo_file_kv"
    discovery_ttl: float = 10.0          # seconds a dead worker's keys survive
    grace_period: float = 5.0            # graceful shutdown: max wait for in-flight streams
    instance_wait_timeout: float = 5.0   # generate(): how long to wait for a first instance
    system_port: Optional[int] = None    # DYN_SYSTEM_PORT: /health /live /metrics
    system_host: str = "127.0.0.1"       # DYN_SYSTEM_HOST: where the system server listens (0.0.0.0: everywhere)
    tcp_host: str = "127.0.0.1"
    stream_window: int = 1024            # chunks a handler may run ahead of a remote consumer
    tcp_keepalive: float = 5.0           # s without any frame from a tcp worker before its streams fail
    nats_kv_bucket: str = "dynamo_discovery"   # JetStream KV bucket of the nats discovery backend
    mem_scope: str = ""                  # mem discovery: runtimes naming the same scope see each other
    event_plane: Optional[str] = None    # DYN_EVENT_PLANE; None: nats if NATS is used, mem with mem
                                         # discovery, else zmq (processes on one machine, file discovery)
    log_level: Optional[str] = None

    @classmethod
    def resolve(cls, discovery_backend: Optional[str] = None, request_plane: Optional[str] = None,
                nats_server: Optional[str] = None, file_kv_dir: Optional[str] = None,
                **overrides) -> "RuntimeConfig":
        """Build from arguments, falling back to DYN_* / NATS_SERVER environment variables."""
        env = os.environ
        port = env.get("DYN_SYSTEM_PORT")
        config = cls(
            discovery_backend=(discovery_backend or env_setting("discovery_backend") or "mem").lower(),
            request_plane=(request_plane or env_setting("request_plane") or "inproc").lower(),
            nats_server=nats_server or env_setting("nats_server") or cls.nats_server,
            file_kv_dir=file_kv_dir or env_setting("file_kv_dir") or cls.file_kv_dir,
            discovery_ttl=float(env.get("DYN_DISCOVERY_TTL", cls.discovery_ttl)),
            grace_period=float(env.get("DYN_GRACE_PERIOD", cls.grace_period)),
            instance_wait_timeout=float(env.get("DYN_INSTANCE_WAIT_TIMEOUT", cls.instance_wait_timeout)),
            system_port=int(port) if port else None,
            system_host=env.get("DYN_SYSTEM_HOST") or cls.system_host,
            tcp_host=env.get("DYN_TCP_HOST", cls.tcp_host),
            stream_window=int(env.get("DYN_STREAM_WINDOW", cls.stream_window)),
            tcp_keepalive=float(env.get("DYN_TCP_KEEPALIVE", cls.tcp_keepalive)),
            nats_kv_bucket=env.get("DYN_NATS_KV_BUCKET", cls.nats_kv_bucket),
            log_level=env.get("DYN_LOG"),
            event_plane=(env.get("DYN_EVENT_PLANE") or "").lower() or None,
        )
        for name, value in overrides.items():
            if value is not None:
                setattr(config, name, value)
        if config.event_plane is None:
            config.event_plane = config.default_event_plane()
        config.validate()
        return config

    def default_event_plane(self) -> str:
        """nats when the runtime already talks to NATS, mem for a one-process (mem) deployment, else zmq."""
        if "nats" in (self.discovery_backend, self.request_plane):
            return "nats"
        return "mem" if self.discovery_backend == "mem" else "zmq"

    def validate(self) -> None:
        """Refuse pairings that cannot work, with a message that says why."""
        if self.discovery_backend not in DISCOVERY_BACKENDS:
            raise ConfigurationError(f"unknown discovery backend {self.discovery_backend!r}; "
                                     f"expected one of {DISCOVERY_BACKENDS}")
        if self.request_plane not in REQUEST_PLANES:
            raise ConfigurationError(f"unknown request plane {self.request_plane!r}; "
                                     f"expected one of {REQUEST_PLANES}")
        if self.request_plane == "inproc" and self.discovery_backend != "mem":
            raise ConfigurationError(
                f"request plane 'inproc' only works with discovery 'mem' (one process), "
                f"not {self.discovery_backend!r}; use DYN_REQUEST_PLANE=tcp or nats")
        if self.event_plane is not None and self.event_plane not in EVENT_PLANES:
            raise ConfigurationError(f"unknown event plane {self.event_plane!r}; expected one of {EVENT_PLANES}")
        if self.discovery_ttl <= 0:
            raise ConfigurationError("discovery TTL must be positive")
        if self.stream_window < 2:
            raise ConfigurationError("stream window must be at least 2 chunks")
        if self.tcp_keepalive <= 0:
            raise ConfigurationError("tcp keepalive timeout must be positive")
