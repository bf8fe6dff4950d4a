"""``keel label ...``: label projects from the command line, for the project's owner, its annotators and experts.

>>> keel label create reviews reviews@1 --classes pos,neg --guideline guide.md --gold-column known  # doctest: +SKIP
>>> keel label next reviews                  # your next task                                     # doctest: +SKIP
>>> keel label submit reviews 17 pos                                                               # doctest: +SKIP
>>> keel label status reviews                # progress, agreement, annotators, review queue      # doctest: +SKIP
>>> keel label export reviews                # the labels as dataset reviews.labels@N             # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli import label_status
from keel.cli.lookup import require_store
from keel.cli.output import JSON_OPTION, console, esc, fmt_time, print_json
from keel.core.errors import InvalidArgument
from keel.core.labeling import LABEL_KINDS, Annotation, LabelProject, LabelSchema, Task, label_text

app = typer.Typer(help="Label projects: guidelines, annotators, agreement, consensus, reviews and audits.",
                  no_args_is_help=True)  # fmt: skip
app.command("status")(label_status.status)


def _ctx(create: bool = False) -> Any:
    """The current context; the store must exist unless the command brings its own data (``create``)."""
    from keel.context import current

    if not create:
        require_store()
    return current()


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument.for_field(option, str(path), f"a readable UTF-8 file ({exc.__class__.__name__})") from None


def _answers(text: str | None, option: str) -> Any:
    """A column name, or ``@file.json`` holding ``{key: answer}``."""
    if text is None or not text.startswith("@"):
        return text
    try:
        loaded = json.loads(_read(Path(text[1:]), option))
    except json.JSONDecodeError as exc:
        raise InvalidArgument.for_field(option, text, f"a JSON object {{key: answer}} ({exc.msg})") from None
    if not isinstance(loaded, dict):
        raise InvalidArgument.for_field(option, text, "a JSON object {key: answer}")
    return loaded


def parse_value(text: str, kind: str = "multilabel") -> Any:
    """An answer typed on the command line: for a ``classes`` label the text itself (a class may be named ``3`` or
    ``true``); otherwise JSON when it parses (a number, a list, spans), else the text."""
    if kind == "classes":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _answer(project: str, text: str, ctx: Any) -> Any:
    from keel.label import get_project

    return parse_value(text, get_project(project, ctx=ctx).schema.kind)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Project name."),
    dataset: str = typer.Argument(..., help="The items: a dataset version such as reviews@1 (a bare name: its latest)."),
    guideline: Path = typer.Option(..., "--guideline", help="The guideline, a Markdown file (version 1)."),
    classes: str = typer.Option("", "--classes", help="Class names, comma-separated."),
    kind: str = typer.Option("classes", "--kind", help=f"What a label is: {', '.join(LABEL_KINDS)}."),
    text_field: str = typer.Option(None, "--text-field", help="For --kind spans: the column holding the text."),
    overlap: int = typer.Option(3, "--overlap", "-k", help="Annotators per item."),
    key: str = typer.Option(None, "--key", help="The column identifying a row (default: its position)."),
    fields: str = typer.Option("", "--fields", help="Columns shown to annotators, comma-separated (default: all)."),
    gold: str = typer.Option(None, "--gold", help="Gold answers: a column name, or @file.json ({key: answer})."),
    gold_rate: float = typer.Option(0.1, "--gold-rate", help="Share of an annotator's tasks that are gold items."),
    qualification: str = typer.Option(None, "--qualification", help="The qualification set: a column, or @file.json."),
    qualification_pass: float = typer.Option(0.8, "--pass", help="Accuracy needed on the qualification set."),
    minimum: float = typer.Option(None, "--min", help="For --kind number: the smallest answer."),
    maximum: float = typer.Option(None, "--max", help="For --kind number: the largest answer."),
    json_: bool = JSON_OPTION,
) -> None:
    """A new label project over the rows of DATASET."""
    from keel.label import create_project

    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    schema = LabelSchema(kind, names, minimum, maximum, text_field)
    project = create_project(
        name, dataset, guideline=_read(guideline, "--guideline"), schema=schema, overlap=overlap, key=key,
        fields=[f.strip() for f in fields.split(",") if f.strip()], gold=_answers(gold, "--gold"), gold_rate=gold_rate,
        qualification=_answers(qualification, "--qualification"), qualification_pass=qualification_pass, ctx=_ctx(),
    )  # fmt: skip
    if json_:
        print_json(project_json(project))
        return
    console.print(f"created label project [bold]{esc(project.name)}[/] over {esc(project.dataset)}: {project.items} items "
                  f"({project.gold_items} gold, {project.qualification_items} qualification), {project.overlap} "
                  f"annotators each")  # fmt: skip
    console.print(f"annotators: [bold]keel label next {esc(project.name)}[/], or the page /ui/label/{esc(project.name)}")


def project_json(p: LabelProject) -> dict[str, Any]:
    """A project as JSON data."""
    return {"name": p.name, "dataset": p.dataset, "schema": p.schema.to_dict(), "overlap": p.overlap,
            "gold_rate": p.gold_rate, "qualification_pass": p.qualification_pass, "fields": list(p.fields),
            "guideline_version": p.guideline_version, "items": p.items, "gold_items": p.gold_items,
            "qualification_items": p.qualification_items, "created_at": p.created_at, "created_by": p.created_by}  # fmt: skip


@app.command("list")
def list_(json_: bool = JSON_OPTION) -> None:
    """Every label project."""
    from keel.label import list_projects

    projects = list_projects(ctx=_ctx())
    if json_:
        print_json([project_json(p) for p in projects])
        return
    if not projects:
        console.print("no label projects yet: [bold]keel label create[/]")
        return
    table = Table("project", "dataset", "kind", "items", "gold", "overlap", "guideline", "created")
    for p in projects:
        table.add_row(esc(p.name), esc(p.dataset), p.schema.kind, str(p.items), str(p.gold_items), str(p.overlap),
                      f"v{p.guideline_version}", fmt_time(p.created_at))  # fmt: skip
    console.print(table)


@app.command("guideline")
def guideline(
    project: str = typer.Argument(..., help="Project name."),
    path: Path = typer.Argument(None, help="A Markdown file: becomes the next guideline version. Without: print the latest."),
) -> None:
    """Print the guideline, or publish a new version of it."""
    from keel.label import add_guideline, guidelines

    ctx = _ctx()
    if path is None:
        latest = guidelines(project, ctx=ctx)[-1]
        typer.echo(f"# guideline v{latest.version} ({fmt_time(latest.created_at)}, {latest.created_by})")
        typer.echo(latest.text)
        return
    made = add_guideline(project, _read(path, "PATH"), ctx=ctx)
    console.print(f"guideline v{made.version} of {esc(project)} published: tasks handed out from now on record it")


def task_json(task: Task) -> dict[str, Any]:
    """A task as JSON data (no role, no answer)."""
    return {"project": task.project, "item": task.item, "data": dict(task.data), "guideline_version": task.guideline_version,
            "assigned_at": task.assigned_at, "qualification": task.qualification,
            "remaining_qualification": task.remaining_qualification}  # fmt: skip


@app.command("next")
def next_(project: str = typer.Argument(..., help="Project name."), json_: bool = JSON_OPTION) -> None:
    """Your next task (as the configured user, or the token's principal on a server)."""
    from keel.label import get_project, next_task

    ctx = _ctx()
    task = next_task(project, ctx=ctx)
    if json_:
        print_json(task_json(task) if task else None)
        return
    if task is None:
        console.print(f"nothing left for you in {esc(project)}")
        return
    info = get_project(project, ctx=ctx)
    head = "qualification item" if task.qualification else "item"
    console.print(f"[bold]{head} {esc(task.item)}[/] (guideline v{task.guideline_version})")
    for name, value in task.data.items():
        console.print(f"  [dim]{esc(name)}:[/] {esc(value)}")
    if info.schema.classes:
        console.print(f"  answer one of: {esc(', '.join(info.schema.classes))}")
    console.print(f"then: keel label submit {esc(project)} {esc(task.item)} ANSWER")


def annotation_json(a: Annotation) -> dict[str, Any]:
    """An annotation as JSON data."""
    return {"id": a.id, "project": a.project, "item": a.item, "annotator": a.annotator, "value": a.value,
            "assigned_at": a.assigned_at, "created_at": a.created_at, "time_spent_ms": a.time_spent_ms,
            "guideline_version": a.guideline_version}  # fmt: skip


@app.command("submit")
def submit(
    project: str = typer.Argument(..., help="Project name."),
    item: str = typer.Argument(..., help="The item's key (from keel label next)."),
    value: str = typer.Argument(..., help="The answer: a class, or JSON (a list of classes, a number, spans)."),
    request_id: str = typer.Option(None, "--request-id", help="Makes a retried submit write once."),
    json_: bool = JSON_OPTION,
) -> None:
    """Answer ITEM."""
    from keel.label import submit as submit_answer

    ctx = _ctx()
    made = submit_answer(project, item, _answer(project, value, ctx), request_id=request_id, ctx=ctx)
    if json_:
        print_json(annotation_json(made))
        return
    console.print(f"recorded {esc(label_text(made.value))} for item {esc(made.item)} by {esc(made.annotator)} "
                  f"({made.time_spent_ms / 1000:.1f} s, guideline v{made.guideline_version})")  # fmt: skip


@app.command("consensus")
def consensus(
    project: str = typer.Argument(..., help="Project name."),
    method: str = typer.Option(None, "--method", help="dawid_skene (default), glad, majority; median for numbers."),
    limit: int = typer.Option(50, "--limit", "-n", help="Rows to print (all with --json)."),
    json_: bool = JSON_OPTION,
) -> None:
    """Each item's label, its confidence and where it came from."""
    from keel.label import consensus_labels

    labels = consensus_labels(project, method=method, ctx=_ctx())
    if json_:
        print_json(_records(labels))
        return
    _table(labels.head(limit), f"{len(labels)} labelled items of {project}")


@app.command("review")
def review(
    project: str = typer.Argument(..., help="Project name."),
    item: str = typer.Argument(None, help="The item to label (without: list the review queue)."),
    value: str = typer.Argument(None, help="Your label for ITEM."),
    note: str = typer.Option("", "--note", help="Why (kept with the review)."),
    threshold: float = typer.Option(0.7, "--threshold", help="The queue: items whose consensus confidence is below this."),
    json_: bool = JSON_OPTION,
) -> None:
    """The expert review queue (low-confidence items), or your label for one of them."""
    from keel.label import review as review_item
    from keel.label import review_queue

    ctx = _ctx()
    if item is None:
        queue = review_queue(project, threshold=threshold, ctx=ctx)
        if json_:
            print_json(_records(queue))
            return
        _table(queue, f"{len(queue)} items to review in {project} (confidence below {threshold:g})")
        return
    if value is None:
        raise InvalidArgument.for_field("VALUE", None, "your label for the item")
    made = review_item(project, item, _answer(project, value, ctx), note=note, ctx=ctx)
    _said(made, json_)


@app.command("audit")
def audit(
    project: str = typer.Argument(..., help="Project name."),
    item: str = typer.Argument(None, help="A sampled item (without: draw the sample)."),
    value: str = typer.Argument(None, help="Your label for ITEM."),
    sample: int = typer.Option(20, "--sample", help="How many finished items to draw."),
    seed: int = typer.Option(None, "--seed", help="The same seed draws the same sample."),
    note: str = typer.Option("", "--note", help="Why (kept with the audit)."),
    json_: bool = JSON_OPTION,
) -> None:
    """Re-review a random sample of finished items: draw it, then label each."""
    from keel.label import audit as audit_item
    from keel.label import audit_sample

    ctx = _ctx()
    if item is None:
        drawn = audit_sample(project, sample, seed=seed, ctx=ctx)
        if json_:
            print_json(_records(drawn))
            return
        import pandas as pd

        from keel.label import items_of

        data = {i.key: i.data for i in items_of(project, ctx=ctx)}
        # blind: the item and what annotators saw, not the label under audit
        shown = pd.DataFrame([{"item": k, **data.get(k, {})} for k in drawn["item"]])
        _table(shown, f"audit sample of {project}: {len(shown)} finished items")
        console.print(f"label each, without looking at its current label: keel label audit {esc(project)} ITEM LABEL")
        return
    if value is None:
        raise InvalidArgument.for_field("VALUE", None, "your label for the item")
    _said(audit_item(project, item, _answer(project, value, ctx), note=note, ctx=ctx), json_)


def _said(made: Any, json_: bool) -> None:
    if json_:
        print_json({"project": made.project, "item": made.item, "kind": made.kind, "value": made.value,
                    "outcome": made.outcome, "note": made.note, "reviewer": made.reviewer,
                    "created_at": made.created_at})  # fmt: skip
        return
    console.print(f"{made.kind} of item {esc(made.item)}: {esc(label_text(made.value))} ({made.outcome}) by {esc(made.reviewer)}")


@app.command("exclude")
def exclude(
    project: str = typer.Argument(..., help="Project name."),
    annotator: str = typer.Argument(..., help="The annotator."),
    reason: str = typer.Option(..., "--reason", help="Why (shown to the annotator)."),
) -> None:
    """Give ANNOTATOR no more tasks; consensus leaves their answers out."""
    from keel.label import exclude as exclude_annotator

    made = exclude_annotator(project, annotator, reason, ctx=_ctx())
    console.print(f"{esc(made.annotator)} excluded from {esc(made.project)}: {esc(made.reason)}")


@app.command("include")
def include(
    project: str = typer.Argument(..., help="Project name."), annotator: str = typer.Argument(..., help="The annotator.")
) -> None:
    """Lift ANNOTATOR's exclusion."""
    from keel.label import include as include_annotator

    include_annotator(project, annotator, ctx=_ctx())
    console.print(f"{esc(annotator)} may annotate {esc(project)} again")


@app.command("export")
def export(
    project: str = typer.Argument(..., help="Project name."),
    name: str = typer.Option(None, "--name", help="The dataset (default: PROJECT.labels)."),
    method: str = typer.Option(None, "--method", help="dawid_skene (default), glad, majority; median for numbers."),
    min_confidence: float = typer.Option(None, "--min-confidence", help="Leave out items labelled with less confidence."),
    labelstudio: Path = typer.Option(
        None,
        "--labelstudio",
        help="Write Label Studio's JSON here instead (tasks, annotations, keel's consensus as predictions).",
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """The labels as a new dataset version (lineage to the project's data, guideline versions and annotations)."""
    from keel.label import export as export_labels

    if labelstudio is not None:
        _export_labelstudio(project, method, labelstudio)
        return

    version = export_labels(project, name, method=method, min_confidence=min_confidence, ctx=_ctx())
    if json_:
        print_json({"dataset": version.name, "version": version.version, "rows": version.row_count, "id": version.id})
        return
    ref = f"{version.name}@{version.version}"
    console.print(f"labels of {esc(project)} -> dataset [bold]{esc(ref)}[/] ({version.row_count} rows); "
                  f"read with keel.data.get({esc(repr(ref))})")  # fmt: skip


def _export_labelstudio(project: str, method: str | None, path: Path) -> None:
    from keel.label import export_labelstudio

    if path.exists():  # never write over a file keel did not write (a JSON file carries no mark of who wrote it)
        raise InvalidArgument.for_field("--labelstudio", str(path), "a new file (this one exists)")
    tasks = export_labelstudio(project, method=method, ctx=_ctx())
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(f"{len(tasks)} tasks of {esc(project)} written to {esc(path)} (Label Studio JSON, consensus as predictions)")


@app.command("import")
def import_(
    project: str = typer.Argument(..., help="Project name (created from the tasks if it does not exist)."),
    path: Path = typer.Argument(..., help="A Label Studio JSON export."),
    classes: str = typer.Option("", "--classes", help="For a new project: class names, comma-separated."),
    kind: str = typer.Option("classes", "--kind", help=f"For a new project: {', '.join(LABEL_KINDS)}."),
    text_field: str = typer.Option(None, "--text-field", help="For spans: the data field holding the text."),
    key_field: str = typer.Option(None, "--key-field", help="The data field identifying a task (default: its id)."),
    from_name: str = typer.Option(None, "--from-name", help="The control tag to read when there are several."),
    json_: bool = JSON_OPTION,
) -> None:
    """Bring Label Studio annotations in: agreement, consensus, reviews and audits then work on them."""
    from keel.label import import_labelstudio

    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    schema = LabelSchema(kind, names, None, None, text_field)
    done = import_labelstudio(project, path, schema=schema, key_field=key_field, from_name=from_name, ctx=_ctx(create=True))
    if json_:
        print_json({"project": done.project.name, "written": done.written, "annotations": done.annotations,
                    "cancelled": done.cancelled, "skipped": done.skipped, "annotators": list(done.annotators)})  # fmt: skip
        return
    console.print(f"{done.written} of {done.annotations} annotations stored in {esc(done.project.name)} "
                  f"({len(done.annotators)} annotators; {done.cancelled} cancelled and {done.skipped} empty ones "
                  f"left out{'; the rest were there already' if done.written < done.annotations else ''})")  # fmt: skip
    console.print(f"next: keel label status {esc(done.project.name)}")


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _table(frame: Any, title: str) -> None:
    from keel.core.numbers import short

    table = Table(*[str(c) for c in frame.columns], title=esc(title))
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(short(v))
            else:
                cells.append(esc(label_text(v) if isinstance(v, list) else v))
        table.add_row(*cells)
    console.print(table)
