"""What pipeline, step and trial runs record, so each reads like a run of its own.

- Child runs (steps, trials) carry their parent's code version and environment
  (``Client.create_run(inherit_from=parent)``): they run the same code, and capturing it
  again per step would cost a git call each.
- A cached step run copies the run it reuses: params, latest metrics, user tags, artifact
  references and the datasets it read, with ``Run.step.cached_from`` naming that run. Gates,
  compare, search and model cards then see the same numbers whether a step ran or not.
- A finished pipeline run carries its steps' latest metrics, so ``keel gate PIPELINE_RUN``
  works; a key logged by several steps is recorded as ``<step>.<key>`` for each of them,
  never as an arbitrary pick of one.
- A pipeline's params are run params (non-scalars as JSON text), and all of them, whatever
  their size, are kept as the pipeline run's ``params.json`` artifact, which ``resume`` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from keel.core.entities import Run
from keel.core.errors import InvalidArgument, KeelError
from keel.core.validation import MAX_PARAM_VALUE_LENGTH
from keel.tracking.client import Client

PARAMS_ARTIFACT = "params.json"
_SCALARS = (str, int, float, bool)


def copy_source_run(client: Client, run_id: str, source: Run) -> None:
    """Give the cached step run ``run_id`` what ``source`` (the run that produced the output) recorded."""
    if source.params:
        client.log_params(run_id, source.params)
    kept = ("keel.code_hash", "keel.output", "keel.attempts")
    tags: dict[str, str] = {k: v for k, v in source.tags.items() if not k.startswith("keel.") or k in kept}
    if tags:
        client.set_tags(run_id, tags)
    for latest in source.metrics.values():
        client.log_metric(run_id, latest.key, latest.value, step=latest.step, timestamp=latest.timestamp)
    artifacts = client.store.list_artifacts(source.id)
    if artifacts:  # references only: the blobs are content-addressed and shared
        client.store.log_artifacts(run_id, artifacts)
    _copy_inputs(client, run_id, source.id)


def _copy_inputs(client: Client, run_id: str, source_id: str) -> None:
    """The dataset versions the source run read. Not the ones it wrote: each was written once, by it."""
    try:
        links = client.store.datasets.versions_of_run(source_id)
    except KeelError:
        return
    for link in links:
        if link.direction == "input":
            client.store.datasets.link_run(run_id, link.version.id, "input")


def step_metrics(steps: Iterable[tuple[str, Run]]) -> dict[str, float]:
    """The latest metrics of ``(node, step run)`` pairs, as a pipeline run records them."""
    by_key: dict[str, list[tuple[str, float]]] = {}
    for node, run in steps:
        for key, latest in run.metrics.items():
            by_key.setdefault(key, []).append((node, latest.value))
    out: dict[str, float] = {}
    for key, values in by_key.items():
        if len(values) == 1:
            out[key] = values[0][1]
        else:  # ambiguous: name each step's value
            out.update({f"{node}.{key}": value for node, value in values})
    return out


def run_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as run params: scalars as they are, others as JSON text. Omitted: values JSON cannot hold and
    values too long for a param (the ``params.json`` artifact has every JSON value in full)."""
    out: dict[str, Any] = {}
    for key, value in _paths_as_text(params).items():
        if isinstance(value, _SCALARS):
            if len(str(value)) <= MAX_PARAM_VALUE_LENGTH:
                out[key] = value
            continue
        try:
            text = json.dumps(value, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError):
            continue  # a frame or an object: no faithful text for it
        if len(text) <= MAX_PARAM_VALUE_LENGTH:
            out[key] = text
    return out


def _paths_as_text(params: Mapping[str, Any]) -> dict[str, Any]:
    """Path params as their text (``resume`` makes them paths again by their hints: ``hints.restore_paths``)."""
    return {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in params.items()}


def params_document(params: Mapping[str, Any]) -> str:
    """Every param, as JSON: ``{"params": {...}, "not_json": [names of params JSON cannot hold]}``."""
    kept: dict[str, Any] = {}
    lost: list[str] = []
    for key, value in _paths_as_text(params).items():
        try:
            json.dumps(value, allow_nan=True)
            kept[key] = value
        except (TypeError, ValueError):
            lost.append(key)
    return json.dumps({"params": kept, "not_json": lost}, allow_nan=True)


def read_params(client: Client, run: Run) -> dict[str, Any]:
    """The params a pipeline run ran with (for ``resume``): its ``params.json`` artifact, else (older runs)
    its ``keel.params`` tag. Raises ``InvalidArgument`` when they cannot be recovered in full."""
    document: Any
    from_artifact = any(ref.path == PARAMS_ARTIFACT for ref in client.store.list_artifacts(run.id))
    if from_artifact:
        text = client.read_artifact(run.id, PARAMS_ARTIFACT).decode()
        source = f"its {PARAMS_ARTIFACT} artifact"
    elif "keel.params" in run.tags:
        text = run.tags["keel.params"]
        source = "its keel.params tag (older runs cut it at 8,000 characters)"
    else:
        raise InvalidArgument(f"pipeline run {run.id} has no recorded params; run the pipeline again with its params")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidArgument(
            f"the params of pipeline run {run.id} cannot be read from {source}: they are cut or corrupt; "
            "run the pipeline again with its params"
        ) from None
    if from_artifact:
        if not isinstance(document, dict) or not isinstance(document.get("params"), dict):
            raise InvalidArgument(f"the {PARAMS_ARTIFACT} artifact of pipeline run {run.id} is not a params document")
        if document.get("not_json"):
            raise InvalidArgument(
                f"pipeline run {run.id} ran with params that JSON cannot hold ({', '.join(document['not_json'])}); "
                "resume cannot restore them: run the pipeline again"
            )
        document = document["params"]
    if not isinstance(document, dict):
        raise InvalidArgument(f"the params of pipeline run {run.id} in {source} are not a mapping; run the pipeline again")
    return document
