"""Silos: what runs inside a silo, how the coordinator reaches one, and the one message format that crosses.

A silo (``Silo``) lives in its own spawned process, a Ray actor, or (for debugging) the coordinator's process. It
opens the stores itself, loads ITS OWN dataset version, trains locally and answers with parameters and counts. Every
message is ``encode``d bytes: a JSON header of scalars and strings plus numeric NumPy arrays in an ``.npz`` read
with ``allow_pickle=False``, so no Python object (and no DataFrame) can travel by accident; ``Silos.exchange`` is the
one place bytes cross, and its hook sees them all. (With Ray, the bytes themselves travel as a Ray object, which
Ray serialises with its own pickling between the actor and the coordinator: both are processes of the one training,
started by the coordinator; the message inside is still read without pickle.) A silo's error crosses as its type and
keel's own message only: a library's message may quote a cell.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core.errors import FederatedError, InvalidArgument, MissingExtra

if TYPE_CHECKING:
    import numpy as np

    from keel.tracking.client import Client

Hook = Callable[[str, int, bytes], None]


# the one message format ---------------------------------------------------------------------------------
@dataclass
class Message:
    """What crosses the silo boundary: a kind, JSON scalars/strings, numeric arrays."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def encode(message: Message) -> bytes:
    """The bytes of a message: an ``.npz`` of its numeric arrays and a JSON header. Object arrays are refused."""
    import numpy as np

    arrays: dict[str, Any] = {}
    for key, value in message.arrays.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise InvalidArgument.for_field(f"message array {key}", str(arr.dtype), "a numeric array")
        arrays[key] = arr
    header = json.dumps({"kind": message.kind, "fields": message.fields}, allow_nan=False).encode()
    buf = io.BytesIO()
    np.savez(buf, __header__=np.frombuffer(header, dtype=np.uint8), **arrays)
    return buf.getvalue()


def decode(data: bytes) -> Message:
    """A message from its bytes; arrays are read with ``allow_pickle=False`` (no object can be smuggled in)."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        header = json.loads(bytes(npz["__header__"]).decode())
        arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    return Message(header["kind"], header["fields"], arrays)


# the model: logistic (softmax) regression by mini-batch SGD, in numpy ---------------------------------------
def _proba(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Class probabilities: a sigmoid for one row of coefficients (binary), else a softmax."""
    import numpy as np

    z = x @ coef.T + intercept
    if coef.shape[0] == 1:
        p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
        return np.column_stack([1.0 - p1, p1])
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def scores(x: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss of parameters on rows ``x`` with class indices ``y``."""
    import numpy as np

    p = _proba(x, coef, intercept)
    picked = np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)
    return {"accuracy": float(np.mean(p.argmax(axis=1) == y)), "log_loss": float(-np.mean(np.log(picked)))}


def _sgd(
    z: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: np.ndarray, *, epochs: int, lr: float, batch: int,
    alpha: float, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``epochs`` passes of mini-batch gradient descent on the (L2-penalised) log loss."""
    import numpy as np

    coef, intercept = coef.copy(), intercept.copy()
    k = coef.shape[0]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch):
            idx = order[start : start + batch]
            p = _proba(z[idx], coef, intercept)
            target = np.zeros((len(idx), max(k, 2)))
            target[np.arange(len(idx)), y[idx]] = 1.0
            g = (p - target)[:, 1:] if k == 1 else p - target  # binary: the gradient of the one logit
            coef -= lr * (g.T @ z[idx] / len(idx) + alpha * coef)
            intercept -= lr * g.mean(axis=0)
    return coef, intercept


# a silo: what runs in the silo's own process or actor -------------------------------------------------------
class Silo:
    """One silo's side of the protocol: opens the stores, loads its dataset, trains locally, answers in bytes."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.index = -1

    def handle(self, data: bytes) -> bytes:
        """Answer one message; a failure answers an ``error`` message (the exception's text, never rows)."""
        try:
            message = decode(data)
            reply = getattr(self, f"_on_{message.kind}")(message)
        except InvalidArgument as exc:  # keel's own checks here name columns and datasets, never a cell
            reply = Message("error", {"error": f"InvalidArgument: {exc.message}"})
        except Exception as exc:  # noqa: BLE001 - reported to the coordinator, which raises it
            # only the type: a library's message may quote a value of the silo's rows (pandas' "could not convert
            # string to float: '<cell>'"), and the error crosses the boundary and lands in the run's tags
            reply = Message("error", {"error": f"{type(exc).__name__} in the silo (its message stays there)"})
        return encode(reply)

    def _on_open(self, m: Message) -> Message:
        import numpy as np

        import keel.data
        from keel.tracking.client import Client

        f = m.fields
        self.index, self.client = int(f["silo"]), Client(f["store"], f["artifacts"])
        frame = keel.data.get(f["dataset"], run=f["run_id"], ctx=self.client.context)  # lineage: the parent read it
        missing = [c for c in [*f["features"], f["target"]] if c not in frame.columns]
        if missing:
            raise InvalidArgument(f"dataset {f['dataset']} has no column {missing[0]!r}")
        text = [c for c in f["features"] if frame[c].dtype.kind not in "biuf"]
        if text:  # named by column and type, before a conversion whose error would quote a cell
            raise InvalidArgument(f"dataset {f['dataset']}: feature {text[0]!r} is {frame[text[0]].dtype}, not a number")
        x = frame[f["features"]].to_numpy(dtype="float64")
        if not np.isfinite(x).all():
            raise InvalidArgument(f"dataset {f['dataset']}: the features must be numbers with no missing values")
        self.labels = frame[f["target"]].to_numpy()
        self.seed = int(f["seed"])
        if "lo" in m.arrays:  # differential privacy: public bounds, parameters travel in their [0, 1] space
            self.private = True
            self.z = unit(x, m.arrays["lo"], m.arrays["hi"])
            self.mean, self.scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
            return Message("ready", {"rows": len(x)})  # the row count is public (replace-one neighbouring)
        self.private = False
        self.mean, std = x.mean(axis=0), x.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        self.z = (x - self.mean) / self.scale
        classes = sorted({plain_label(v) for v in self.labels.tolist()}, key=label_order)
        return Message("ready", {"rows": len(x), "classes": classes})

    def _on_train(self, m: Message) -> Message:
        import numpy as np

        f = m.fields
        lookup = {repr(c): i for i, c in enumerate(f["classes"])}
        y = np.array([lookup.get(repr(plain_label(v)), -1) for v in self.labels.tolist()])
        if (y < 0).any():
            raise InvalidArgument(f"the labels hold a value outside the classes {f['classes']}")
        if self.private:
            return self._private_update(m, y)
        # raw-space parameters into this silo's standardised space, and back after training
        coef_z = m.arrays["coef"] * self.scale
        intercept_z = m.arrays["intercept"] + m.arrays["coef"] @ self.mean
        before = scores(self.z, y, coef_z, intercept_z)
        rng = np.random.default_rng([self.seed, self.index, int(f["round"])])
        coef_z, intercept_z = _sgd(
            self.z, y, coef_z, intercept_z, epochs=int(f["epochs"]), lr=float(f["learning_rate"]),
            batch=int(f["batch_size"]), alpha=float(f["alpha"]), rng=rng,
        )  # fmt: skip
        after = scores(self.z, y, coef_z, intercept_z)
        assert self.client is not None
        name = f"silo{self.index}"
        self.client.log_metrics(
            f["run_id"],
            {f"{name}.global_accuracy": before["accuracy"], f"{name}.accuracy": after["accuracy"],
             f"{name}.log_loss": after["log_loss"], f"{name}.rows": float(len(y))},
            step=int(f["round"]),
        )  # fmt: skip
        self.client.flush()
        coef = coef_z / self.scale
        return Message("update", {"rows": len(y)}, {"coef": coef, "intercept": intercept_z - coef @ self.mean})

    def _private_update(self, m: Message, y: np.ndarray) -> Message:
        """``epochs`` full-batch gradient steps, each on the sum of per-row gradients clipped to L1 norm ``clip``
        plus Laplace noise of scale 2 * clip / epsilon_step (replace-one sensitivity of the sum): each step is
        epsilon_step-DP, and the parameters sent are post-processing of the noisy sums. Only the row count is
        logged: an exact accuracy on the silo's rows would be released without noise."""
        import numpy as np

        f = m.fields
        coef, intercept = m.arrays["coef"].copy(), m.arrays["intercept"].copy()
        clip, eps, lr, alpha = float(f["clip"]), float(f["epsilon_step"]), float(f["learning_rate"]), float(f["alpha"])
        rng = np.random.default_rng()  # OS entropy: noise from the (public) seed could be subtracted
        k, n = coef.shape[0], len(y)
        ones = np.column_stack([self.z, np.ones(n)])
        for _ in range(int(f["epochs"])):
            p = _proba(self.z, coef, intercept)
            target = np.zeros((n, max(k, 2)))
            target[np.arange(n), y] = 1.0
            g = (p - target)[:, 1:] if k == 1 else p - target  # (n, k): per-row gradients are g[i] (x) [z_i, 1]
            norms = np.abs(g).sum(axis=1) * np.abs(ones).sum(axis=1)
            g = g * np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
            total = g.T @ ones + rng.laplace(0.0, 2.0 * clip / eps, size=(k, ones.shape[1]))
            coef -= lr * (total[:, :-1] / n + alpha * coef)
            intercept -= lr * total[:, -1] / n
        assert self.client is not None
        self.client.log_metrics(f["run_id"], {f"silo{self.index}.rows": float(n)}, step=int(f["round"]))
        self.client.flush()
        return Message("update", {"rows": n}, {"coef": coef, "intercept": intercept})

    def _on_close(self, m: Message) -> Message:
        if self.client is not None:  # the silo's own store connection and metric writer
            self.client.close()
            self.client = None
        return Message("closed")


def unit(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Rows clipped to public bounds and scaled into [0, 1] (the registered model's scaler does the same)."""
    import numpy as np

    span = np.where(hi > lo, hi - lo, 1.0)
    return np.asarray(np.clip((x - lo) / span, 0.0, 1.0), dtype="float64")


def label_order(label: Any) -> tuple[bool, Any]:
    """Labels in a stable order: numbers before strings, each by value."""
    return (isinstance(label, str), label)


def plain_label(value: Any) -> Any:
    """A label as a JSON value (NumPy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value


def _silo_process(conn: Any) -> None:
    """A spawned silo: bytes in, bytes out, until ``close``."""
    silo = Silo()
    while True:
        data = conn.recv_bytes()
        reply = silo.handle(data)
        conn.send_bytes(reply)
        if decode(data).kind == "close":
            conn.close()
            return


# transports: how the coordinator reaches a silo ----------------------------------------------------------------
class _Link:
    """A silo seen from the coordinator: ``send`` bytes, later ``receive`` the reply's bytes."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def receive(self) -> bytes:
        raise NotImplementedError

    def stop(self, force: bool = False) -> None:
        pass


class _InlineLink(_Link):
    """The silo in this process (debugging): still only bytes cross."""

    def __init__(self) -> None:
        self.silo, self.reply = Silo(), b""

    def send(self, data: bytes) -> None:
        self.reply = self.silo.handle(data)

    def receive(self) -> bytes:
        return self.reply


class _ProcessLink(_Link):
    def __init__(self) -> None:
        import multiprocessing

        mp = multiprocessing.get_context("spawn")  # no inherited threads, store connections or rows
        self.conn, child = mp.Pipe()
        self.process = mp.Process(target=_silo_process, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def send(self, data: bytes) -> None:
        self.conn.send_bytes(data)

    def receive(self) -> bytes:
        try:
            return bytes(self.conn.recv_bytes())
        except EOFError:
            raise FederatedError(f"a silo process exited (code {self.process.exitcode})") from None

    def stop(self, force: bool = False) -> None:
        self.process.join(timeout=0 if force else 10)
        if self.process.is_alive():
            self.process.terminate()
        self.conn.close()


class _RayLink(_Link):
    def __init__(self, actor_class: Any) -> None:
        self.actor = actor_class.remote()
        self.pending: Any = None

    def send(self, data: bytes) -> None:
        self.pending = self.actor.handle.remote(data)

    def receive(self) -> bytes:
        import ray

        return bytes(ray.get(self.pending))

    def stop(self, force: bool = False) -> None:
        import ray

        ray.kill(self.actor)


def connect(executor: str, n: int) -> list[_Link]:
    if executor == "inline":
        return [_InlineLink() for _ in range(n)]
    if executor == "process":
        return [_ProcessLink() for _ in range(n)]
    try:
        import ray
    except ImportError:
        raise MissingExtra("ray", "ray") from None
    import os

    if not ray.is_initialized():  # a local Ray stays on loopback (as keel.pipelines' Ray executor)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    actor = ray.remote(num_cpus=0)(Silo)  # silos mostly wait: they should not hold a CPU each
    return [_RayLink(actor) for _ in range(n)]


class Silos:
    """The coordinator's side: every message to and from every silo goes through ``exchange``."""

    def __init__(self, links: list[_Link], hook: Hook | None) -> None:
        self.links, self.hook = links, hook

    def exchange(self, messages: list[Message]) -> list[Message]:
        """Send one message to each silo (they work at once), then read every reply; a silo's error raises."""
        for i, (link, message) in enumerate(zip(self.links, messages, strict=True)):
            data = encode(message)
            if self.hook is not None:
                self.hook("to_silo", i, data)
            link.send(data)
        replies = []
        for i, link in enumerate(self.links):
            data = link.receive()
            if self.hook is not None:
                self.hook("from_silo", i, data)
            replies.append(decode(data))
        for i, reply in enumerate(replies):
            if reply.kind == "error":
                raise FederatedError(f"silo {i}: {reply.fields.get('error', '')}")
        return replies

    def close(self) -> None:
        try:
            self.exchange([Message("close") for _ in self.links])
        finally:
            for link in self.links:
                link.stop()


def stop_all(silos: Silos) -> None:
    """Stop every silo after a failure, without waiting on one that may be stuck or gone."""
    for link in silos.links:
        try:
            link.stop(force=True)
        except Exception:  # noqa: BLE001 - already failing: the first error is the one to raise
            pass
