"""Configuration in one place: ``KEEL_*`` environment variables, then ``keel.toml``, then defaults.

This is the only module of keel that reads ``os.environ``.

=====================  ==============================  ==========================================
setting                environment                     default
=====================  ==============================  ==========================================
home                   KEEL_HOME                       ``.keel`` of the project folder (see ``find_project``)
store                  KEEL_STORE                      ``sqlite:///<home>/keel.db``
artifacts              KEEL_ARTIFACTS                  ``<home>/artifacts`` (the server's, for http stores)
flush_interval         KEEL_FLUSH_INTERVAL             0.5 s (metric buffer flush)
heartbeat_interval     KEEL_HEARTBEAT_INTERVAL         5 s
heartbeat_timeout      KEEL_HEARTBEAT_TIMEOUT          30 s (a running run silent this long reads as killed)
experiment             KEEL_EXPERIMENT                 ``default``
ray_address            KEEL_RAY_ADDRESS                none: a local Ray started on demand
trust_pickle           KEEL_TRUST_PICKLE               false: never unpickle a model served by a keel server
max_request_bytes      KEEL_MAX_REQUEST_BYTES          64 MiB (the server refuses a larger JSON body: 413)
max_artifact_bytes     KEEL_MAX_ARTIFACT_BYTES         5 GiB (the server refuses a larger upload: 413)
token                  KEEL_TOKEN                      none: the bearer token clients send to a keel server
prediction_log         KEEL_PREDICTION_LOG             ``parquet``: where keel serve logs predictions (``parquet``:
                                                       files in the artifact store; ``kafka://HOST:PORT[/TOPIC]``;
                                                       ``off``)
=====================  ==============================  ==========================================
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.core.errors import InvalidArgument

_FLOAT_SETTINGS = ("flush_interval", "heartbeat_interval", "heartbeat_timeout")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
MAX_REQUEST_BYTES = 64 << 20
MAX_ARTIFACT_BYTES = 5 << 30
# kafka://host:port[,host:port...][/topic][?format=json|avro]; a topic is Kafka's legal characters
_KAFKA_URL = re.compile(r"kafka://(?:[\w.-]+:\d{1,5})(?:,[\w.-]+:\d{1,5})*(?:/[\w.-]{1,249})?(?:\?format=(?:json|avro))?")


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    store: str
    artifacts: str | None
    flush_interval: float = 0.5
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 30.0
    experiment: str = "default"
    ray_address: str | None = None  # a running cluster ("ray://host:10001", "auto"); None: local Ray on demand
    trust_pickle: bool = False  # unpickling runs code: opt in before loading pickles from a shared (http) store
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_artifact_bytes: int = MAX_ARTIFACT_BYTES
    token: str | None = None  # sent as ``Authorization: Bearer`` by the HTTP stores
    prediction_log: str = "parquet"  # "parquet" | "kafka://HOST:PORT[,HOST:PORT...][/TOPIC][?format=json|avro]" | "off"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"{path} is not valid TOML: {exc}") from None
    section = data.get("keel", data)
    return section if isinstance(section, dict) else {}


def _flag(name: str, raw: Any) -> bool:
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InvalidArgument.for_field(f"KEEL_{name.upper()}", raw, "1/true/yes/on or 0/false/no/off")


def find_project(start: Path) -> Path | None:
    """The nearest folder, ``start`` or a parent, holding a ``.keel/`` folder or a ``keel.toml``: as git finds ``.git``."""
    start = start.absolute()
    for folder in (start, *start.parents):
        if (folder / ".keel").is_dir() or (folder / "keel.toml").is_file():
            return folder
    return None


def load_settings(cwd: Path | None = None) -> Settings:
    """Resolve settings from the environment, then ``keel.toml`` (``[keel]`` table), then defaults.

    ``keel.toml`` and the default home (``.keel``) are those of the project folder (``find_project``), so a
    command run in a subfolder reads and writes the project's store; with no project above, ``cwd`` is one.
    """
    cwd = cwd or Path.cwd()
    project = find_project(cwd) or cwd
    file_values = _read_toml(project / "keel.toml")

    def pick(name: str) -> Any:
        env = os.environ.get(f"KEEL_{name.upper()}")
        if env not in (None, ""):
            return env
        return file_values.get(name)

    # a relative KEEL_HOME is the caller's folder's; a relative home in keel.toml, the project's
    home = (cwd if os.environ.get("KEEL_HOME") else project) / Path(pick("home") or ".keel")
    store = pick("store") or f"sqlite:///{home / 'keel.db'}"
    floats: dict[str, float] = {}
    for name in _FLOAT_SETTINGS:
        raw = pick(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise InvalidArgument.for_field(f"KEEL_{name.upper()}", raw, "a number of seconds") from None
        if not value > 0:
            raise InvalidArgument.for_field(f"KEEL_{name.upper()}", raw, "a positive number of seconds")
        floats[name] = value
    return Settings(
        home=home,
        store=str(store),
        artifacts=pick("artifacts"),
        experiment=str(pick("experiment") or "default"),
        ray_address=pick("ray_address"),
        trust_pickle=_flag("trust_pickle", pick("trust_pickle")),
        max_request_bytes=_byte_count("max_request_bytes", pick("max_request_bytes"), MAX_REQUEST_BYTES),
        max_artifact_bytes=_byte_count("max_artifact_bytes", pick("max_artifact_bytes"), MAX_ARTIFACT_BYTES),
        token=pick("token"),
        prediction_log=_prediction_log(pick("prediction_log")),
        **floats,
    )


def _byte_count(name: str, raw: Any, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field(f"KEEL_{name.upper()}", raw, "a positive whole number of bytes") from None
    if value <= 0 or isinstance(raw, bool):
        raise InvalidArgument.for_field(f"KEEL_{name.upper()}", raw, "a positive whole number of bytes")
    return value


def _prediction_log(raw: Any) -> str:
    if raw is None:
        return "parquet"
    text = str(raw).strip()
    if text.lower() in ("parquet", "off"):
        return text.lower()
    if _KAFKA_URL.fullmatch(text):
        return text
    raise InvalidArgument.for_field(
        "KEEL_PREDICTION_LOG", raw, "parquet, off, or kafka://HOST:PORT[,HOST:PORT...][/TOPIC][?format=json|avro]"
    )
