"""The annotator's pages: the label projects the caller may annotate, and one project's labeling page (the guideline
at hand, the item's fields, the answer widget of the schema's kind, keyboard shortcuts, progress and qualification).

The page's script asks ``/ui/data/label/{project}/next`` for a task and posts answers to
``/ui/data/label/{project}/annotations`` (the cookie travels only to ``/ui`` paths, so these are the UI's twins of
the REST routes). Both call the store as the signed-in caller: ``Guard`` runs the request as the token's principal
(``keel.core.actor.acting_as``), and the store takes the annotator from ``current_actor()``, never from the body.
Nothing here reveals an item's role or known answer beyond what ``Task`` carries: counts and the caller's own score.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from keel.core.actor import current_actor
from keel.core.errors import InvalidArgument, NotFound, PermissionDenied
from keel.core.labeling import Annotation, LabelProject, Task
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

KEYED = 9  # classes 1-9 have a key; the others are clicked


def render_guideline(text: str) -> str:
    """A guideline's Markdown as HTML that can carry nothing active: raw HTML in the text is escaped (markdown-it's
    ``html`` off), images are not rendered (no request leaves the page), links only to ``http``/``https``."""
    from markdown_it import MarkdownIt  # a dependency of rich, so always installed with keel

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image").enable(["table", "strikethrough"])
    md.validateLink = _web_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return str(md.render(text))


def _web_link(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


def _link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """A guideline's link opens elsewhere and tells the other site nothing about this page."""
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    tokens[idx].attrSet("target", "_blank")
    return str(self.renderToken(tokens, idx, options, env))


def field_text(value: Any) -> str:
    """An item's field as the text the page shows: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def qualification_state(request: Request, project: LabelProject, me: str) -> dict[str, Any]:
    """The caller's qualification: how many of the project's qualification items they answered, how many they got
    right, and the share needed. Answers stay on the server; only the caller's own counts leave."""
    labels = request.app.state.store.labels
    items = {i.key: i.answer for i in labels.get_items(project.name, role="qualification")}
    mine = {a.item: a.value for a in labels.annotations(project.name, annotator=me) if a.item in items}
    correct = sum(1 for key, value in mine.items() if value == items[key])
    total = len(items)
    passed = total == 0 or (len(mine) == total and correct >= project.qualification_pass * total - 1e-9)
    done = len(mine) == total
    # the score only once every qualification item is answered: shown after each answer, it would tell which ones
    # were right, and so the answers themselves
    return {"total": total, "answered": len(mine), "correct": correct if done else None,
            "needed": project.qualification_pass, "done": done, "passed": passed}  # fmt: skip


def progress(request: Request, project: LabelProject, me: str) -> dict[str, Any]:
    """The caller's progress: answers given, and items still open to them: task items they have not answered with
    fewer answers than the project's overlap, and gold items they have not answered (counted alike, so that a
    gold answer moves the count as a task answer does and gives nothing away)."""
    labels = request.app.state.store.labels
    answered = {a.item for a in labels.annotations(project.name, annotator=me)}
    items = [i for i in labels.get_items(project.name) if i.key not in answered]
    tasks = sum(1 for i in items if i.role == "task" and i.annotations < project.overlap)
    gold = sum(1 for i in items if i.role == "gold")  # handed out only while tasks are left
    left = tasks + gold if tasks else 0
    return {"answered": len(answered), "left": left, "qualification": qualification_state(request, project, me)}


def task_json(project: LabelProject, task: Task) -> dict[str, Any]:
    """A task as the page shows it: the fields as text, in the item's order (the span text apart)."""
    text_field = project.schema.text_field
    fields = [[name, field_text(value)] for name, value in task.data.items() if name != text_field]
    text = task.data.get(text_field) if text_field else None
    return {"item": task.item, "fields": fields, "text": field_text(text) if text_field else None,
            "guideline_version": task.guideline_version, "qualification": task.qualification,
            "remaining_qualification": task.remaining_qualification, "assigned_at": task.assigned_at}  # fmt: skip


def annotation_json(annotation: Annotation) -> dict[str, Any]:
    return {"item": annotation.item, "annotator": annotation.annotator, "value": annotation.value,
            "guideline_version": annotation.guideline_version, "time_spent_ms": annotation.time_spent_ms,
            "created_at": annotation.created_at}  # fmt: skip


# pages ---------------------------------------------------------------------------------------------------------------


@router.get("/ui/label")
def projects(request: Request) -> HTMLResponse:
    """The label projects, each with the caller's answers so far."""
    labels = request.app.state.store.labels
    me = current_actor()
    rows = [(p, len(labels.annotations(p.name, annotator=me))) for p in labels.list_projects()]
    return page(request, "label_list.html", title="Labeling", nav="label", projects=rows)


@router.get("/ui/label/{project}")
def project_page(request: Request, project: str) -> HTMLResponse:
    """One project's labeling page: the guideline (rendered safely), the answer widget of the schema's kind; the
    script fetches the tasks."""
    labels = request.app.state.store.labels
    try:
        found = labels.get_project(project)
    except (NotFound, InvalidArgument):  # a name that cannot exist is missing too
        return page(request, "label_list.html", title="Labeling", nav="label", projects=[], status=404,
                    missing=f"no label project named {project!r}")  # fmt: skip
    versions = labels.guidelines(project)
    guideline = versions[-1] if versions else None
    schema = found.schema
    keys = [str(i + 1) if i < KEYED else "" for i in range(len(schema.classes))]
    return page(
        request, "label_project.html", title=f"Label {found.name}", nav="label", project=found, schema=schema,
        classes=list(zip(schema.classes, keys, strict=True)), guideline=guideline,
        guideline_html=_markup(render_guideline(guideline.text)) if guideline else "",
    )  # fmt: skip


def _markup(html: str) -> Any:
    """The renderer's output, which escaped every character of the text it did not turn into its own tags."""
    from markupsafe import Markup

    return Markup(html)  # made by render_guideline (html off, links checked), not taken from the text as it is


# the page's JSON calls -------------------------------------------------------------------------------------------------


@router.post("/ui/data/label/{project}/next")
def next_task(request: Request, project: str) -> dict[str, Any]:
    """The caller's next task, or why there is none: ``{"state": "task" | "done" | "not_qualified" | "excluded",
    "task"?, "message"?, "progress"}``."""
    labels = request.app.state.store.labels
    found = labels.get_project(project)
    me = current_actor()
    try:
        task = labels.next_task(project)
    except PermissionDenied as exc:
        return _refusal(request, found, me, exc)
    state = progress(request, found, me)
    if task is None:
        return {"state": "done", "progress": state}
    return {"state": "task", "task": task_json(found, task), "progress": state}


def _refusal(request: Request, project: LabelProject, me: str, exc: PermissionDenied) -> dict[str, Any]:
    """Why the store gave the caller nothing: an exclusion (its reason) or a failed qualification (the score)."""
    labels = request.app.state.store.labels
    excluded = [e for e in labels.exclusions(project.name) if e.annotator == me]
    if excluded:
        return {"state": "excluded", "message": f"excluded: {excluded[0].reason}", "progress": None}
    q = qualification_state(request, project, me)
    if q["done"] and not q["passed"]:
        message = f"not qualified (score {q['correct']}/{q['total']}, {round(q['needed'] * 100)}% needed)"
        return {"state": "not_qualified", "message": message, "progress": None}
    return {"state": "refused", "message": str(exc), "progress": None}


@router.post("/ui/data/label/{project}/annotations")
def submit(request: Request, project: str, body: dict[str, Any]) -> dict[str, Any]:
    """The caller's answer: ``{"item": key, "value": ..., "request_id": "<uuid>"}``; a request id seen before
    returns the first annotation (``created`` false), so a double click writes once."""
    labels = request.app.state.store.labels
    annotation, created = labels.submit(
        project, body.get("item"), body.get("value"), body.get("request_id")
    )  # the store checks them
    return {"annotation": annotation_json(annotation), "created": created}


@router.get("/ui/label/{project}/report")
def report(request: Request, project: str) -> Response:
    """The project's report for those who may read it (progress, agreement, annotators, confusion, review queue,
    audits): the offline HTML of ``keel label status --html``, sandboxed like every HTML artifact."""
    from keel.label.report import render_report
    from keel.label.status import project_status
    from keel.ui.pages.datasets import ui_context
    from keel.ui.previews import ARTIFACT_CSP

    try:
        status = project_status(project, ui_context(request))
    except (NotFound, InvalidArgument):
        return Response(f"no label project named {project!r}", status_code=404, media_type="text/plain")
    headers = {"content-security-policy": ARTIFACT_CSP, "x-content-type-options": "nosniff"}
    return HTMLResponse(render_report(status), headers=headers)
