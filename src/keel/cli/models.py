"""``keel models list|show|register|promote|history|export|card``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from keel.cli.lookup import require_store, resolve_run_id, store_label
from keel.cli.output import JSON_OPTION, clean, console, esc, fmt_num, fmt_time, print_json
from keel.core.errors import InvalidArgument

app = typer.Typer(help="The model registry: versions, aliases, promotion, export.", no_args_is_help=True)


def _uri(ref: str) -> str:
    return ref if ref.startswith("models:/") else f"models:/{ref}"


@app.command("list")
def list_models(as_json: bool = JSON_OPTION) -> None:
    """Every registered model with its latest version and aliases."""
    from keel.tracking.fluent import get_client

    settings = require_store()
    latest = get_client().store.models.list_models()
    if as_json:
        versions = {v.name: get_client().store.models.list_versions(v.name) for v in latest}
        print_json([{"latest": v, "aliases": {a: mv.version for mv in versions[v.name] for a in mv.aliases}} for v in latest])
        return
    if not latest:
        console.print(f"no models in {esc(store_label(settings))} (try [bold]keel quickstart[/])")
        return
    table = Table(header_style="bold")
    for col in ("model", "latest", "flavor", "aliases", "registered"):
        table.add_column(col)
    store = get_client().store.models
    for v in latest:
        aliases = sorted({a for mv in store.list_versions(v.name) for a in (f"{x}->v{mv.version}" for x in mv.aliases)})
        table.add_row(esc(v.name), f"v{v.version}", esc(v.flavor), esc(", ".join(aliases) or "-"), fmt_time(v.created_at))
    console.print(table)


@app.command("show")
def show(ref: str = typer.Argument(..., help="name, name@alias or name/version."), as_json: bool = JSON_OPTION) -> None:
    """A model version: flavor, signature, source run, metrics, training data, requirements."""
    import keel.registry

    require_store()
    v = keel.registry.resolve(_uri(ref))
    if as_json:
        print_json(v)
        return
    console.print(f"[bold]{esc(v.uri)}[/]  flavor {esc(v.flavor)} ({esc(v.signature.get('format'))}), {v.size:,} bytes, "
                  f"aliases {esc(', '.join(v.aliases) or '-')}")  # fmt: skip
    console.print(
        f"source run {esc(v.source_run or '-')}   training data {esc(', '.join(v.datasets) or '-')}   "
        f"registered {fmt_time(v.created_at)}"
    )
    inputs = v.signature.get("inputs", {})
    if inputs.get("type") == "dataframe":
        cols = ", ".join(f"{c['name']}:{c['kind']}" for c in inputs["columns"][:8])
        more = len(inputs["columns"]) - 8
        console.print(f"signature: {len(inputs['columns'])} columns ({esc(cols)}{f', +{more}' if more > 0 else ''})")
    elif inputs:
        console.print(f"signature: tensor {esc(inputs.get('dtype'))} {esc(inputs.get('shape'))}")
    if v.metrics:
        console.print("metrics: " + esc(", ".join(f"{k} {fmt_num(x)}" for k, x in sorted(v.metrics.items()))))
    console.print("requirements: " + esc(", ".join(v.requirements) or "-"))


@app.command("register")
def register(
    run: str = typer.Option(..., help="The run holding the model artifact (its id or a unique prefix)."),
    artifact: str = typer.Option(
        None, help="The artifact's path in the run (a pickled model; default: model.pkl, as keel.autolog writes, or output.pkl)."
    ),
    name: str = typer.Option(..., "--name", "-n", help="Model name."),
    holdout: str = typer.Option(
        None, help="A dataset of rows the model was not trained on (e.g. churn-test@1): ONNX parity is checked on it."
    ),
    trust_pickle: bool = typer.Option(
        None, "--trust-pickle/--no-trust-pickle", help="Unpickle an artifact served by a keel server (it can run code)."
    ),
) -> None:
    """Register a model stored as an artifact of a run (e.g. a pipeline's fit step). A step of a finished pipeline
    gives the version the pipeline's params, its steps' metrics and the datasets its steps read."""
    import hashlib
    import pickle

    import keel.registry
    from keel.autologging.record import default_model_artifact, logged_example
    from keel.registry.models import check_pickle_trust
    from keel.tracking.fluent import get_client

    require_store()
    client = get_client()
    run = resolve_run_id(client, run)
    artifact = artifact or default_model_artifact(client, run)
    data = client.read_artifact(run, artifact)  # verified against its hash first
    what = f"artifact {artifact!r} of run {run} is read with pickle"
    check_pickle_trust(client.context, what, trust_pickle, sha256=hashlib.sha256(data).hexdigest())
    model = pickle.loads(data)
    example = logged_example(client, run, artifact)  # keel.autolog logs one beside its model: the signature
    version = keel.registry.register(model, name, run=run, holdout=holdout, input_example=example)
    console.print(f"registered [bold]{esc(version.uri)}[/] ({esc(version.flavor)}) from run {esc(run[:12])}")
    if version.source_run and version.source_run != run:
        console.print(f"source: pipeline run {esc(version.source_run[:12])}, which ran that step")
    console.print("metrics: " + (esc(", ".join(f"{k} {fmt_num(x)}" for k, x in sorted(version.metrics.items()))) or "-"))
    console.print("training data: " + (esc(", ".join(version.datasets)) or "none recorded"))


@app.command("promote")
def promote(
    name: str = typer.Argument(...),
    version: int = typer.Argument(...),
    alias: str = typer.Argument(..., help="e.g. production, staging, challenger."),
    rule: list[str] = typer.Option([], "--rule", "-r", help="Gate on the version's metrics, e.g. 'auc >= baseline'."),
    require_valid_data: bool = typer.Option(False, help="Refuse unless every training dataset has a passing validation."),
    reason: str = typer.Option("", help="Why (kept in the history)."),
    force: bool = typer.Option(False, "--force", help="Move it with no gate; recorded as forced in the history."),
) -> None:
    """Point an alias at a version if its gates hold (checked by the store). Exit code 1 when refused."""
    import keel.registry

    require_store()
    try:
        change = keel.registry.promote(
            name, version, alias, rules=list(rule), require_valid_data=require_valid_data, reason=reason, force=force
        )
    except keel.registry.PromotionRefused as exc:
        typer.echo(clean(f"keel: refused: {exc.message}"), err=True)
        raise typer.Exit(1) from None
    was = f"v{change.from_version}" if change.from_version else "nothing"
    forced = " [yellow]forced, no gates[/]" if change.forced else ""
    console.print(f"{esc(name)}@{esc(alias)}: {was} -> [bold]v{change.to_version}[/] (by {esc(change.actor)}){forced}")


@app.command("history")
def history(
    name: str = typer.Argument(...),
    alias: str = typer.Option(None, help="Only this alias."),
    at: str = typer.Option(None, help="What the alias pointed to at this time (ISO date), e.g. 2026-03-03."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Who moved which alias, when, from which version to which, and why."""
    import keel.registry

    require_store()
    if at is not None:
        if alias is None:
            raise InvalidArgument.for_field("--at", at, "used with --alias")
        try:
            moment = dt.datetime.fromisoformat(at)
        except ValueError:
            raise InvalidArgument.for_field("--at", at, "an ISO date or time, e.g. 2026-03-03 or 2026-03-03T12:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        version = keel.registry.alias_at(name, alias, int(moment.timestamp() * 1000))
        if as_json:
            print_json({"model": name, "alias": alias, "at": at, "version": version})
            return
        console.print(f"{esc(name)}@{esc(alias)} at {esc(at)}: " + (f"[bold]v{version}[/]" if version else "nothing"))
        return
    if as_json:
        print_json(keel.registry.history(name, alias))
        return
    table = Table(header_style="bold")
    for col in ("when", "alias", "from", "to", "who", "why", "gates"):
        table.add_column(col)
    for c in keel.registry.history(name, alias):
        gates = "forced" if c.forced else f"{len(c.checks or ())} passed" if c.gated else "-"  # "-": before gates were recorded
        table.add_row(fmt_time(c.at), esc(c.alias), f"v{c.from_version}" if c.from_version else "-",
                      f"v{c.to_version}" if c.to_version else "removed", esc(c.actor), esc(c.reason), gates)  # fmt: skip
    console.print(table)


_EXPORT_TRUST_HELP = (
    "Load a model served by a keel server that could harm this process: a pickle (it can run code) or a "
    "skops file with tree models (not bounds-checked). Default: the trust_pickle setting."
)


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="name@alias or name/version."),
    format: str = typer.Option("onnx", "--format", help="Only onnx for now."),
    bundle: Path = typer.Option(None, help="Also write an edge bundle (folder and .zip) here."),
    data: str = typer.Option(
        None, help="Held-out rows for the parity check: a dataset reference (default: the version's --holdout dataset)."
    ),
    trust_pickle: bool = typer.Option(None, "--trust-pickle/--no-trust-pickle", help=_EXPORT_TRUST_HELP),
) -> None:
    """Convert to ONNX, check parity with the original, register the ONNX version; optionally bundle it for the edge."""
    import keel.data
    import keel.registry

    if format != "onnx":
        raise InvalidArgument.for_field("--format", format, "'onnx'")
    require_store()
    if not data:
        _require_holdout(_uri(ref))
    rows = keel.data.get(data, run=False) if data else None
    with console.status("converting and checking parity"):
        version = keel.registry.export_onnx(_uri(ref), rows, trust_pickle=trust_pickle)
    parity = version.signature.get("parity", {})
    console.print(
        f"[bold]{esc(version.uri)}[/] (onnx): label agreement {parity.get('onnx_label_agreement', 0):.2%}, "
        f"max probability difference {fmt_num(parity.get('onnx_max_proba_diff'))} "
        f"on {int(parity.get('onnx_parity_rows', 0))} rows"
    )
    if bundle:
        folder = keel.registry.edge_bundle(version.uri, bundle, data=rows, trust_pickle=trust_pickle)
        console.print(f"edge bundle: [bold]{esc(folder)}[/] and {esc(folder.resolve().with_suffix('.zip'))} (numpy + onnxruntime "
                      f"only; run its test: cd {esc(folder)} && python test_predictor.py)")  # fmt: skip


def _require_holdout(uri: str) -> None:
    """Without --data, the version must record held-out rows: say so naming the option, before anything loads."""
    import keel.registry
    from keel.registry.export import recorded_holdout

    version = keel.registry.resolve(uri)
    if version.flavor != "onnx" and recorded_holdout(version) is None:
        raise InvalidArgument(
            f"--data is required: {version.uri} records no held-out rows to check ONNX parity on "
            "(give --data DATASET, or register with --holdout DATASET)"
        )


@app.command("card")
def card(
    ref: str = typer.Argument(..., help="name@alias or name/version."),
    output: Path = typer.Option(None, "--output", "-o", help="Folder for the .md and .html (default: .keel/cards)."),
    purpose: str = typer.Option("", help="What the model is for."),
    intended_use: str = typer.Option("", help="Who may use it, for what, and for what not."),
    limitations: str = typer.Option("", help="Known limitations."),
) -> None:
    """Write the model card (Markdown and offline HTML) from lineage, and attach it to the version's run."""
    import keel.registry

    settings = require_store()
    v = keel.registry.resolve(_uri(ref))
    md, html = keel.registry.write_card(
        v.name,
        v.version,
        output or settings.home / "cards",
        purpose=purpose,
        intended_use=intended_use,
        limitations=limitations,
    )
    console.print(f"model card: [bold]{esc(md)}[/] and {esc(html)}")
