"""The quickstart's labeling chapter: a crowd labels a sample of the data under keel's controls.

150 rows go to a label project (3 annotators per row, gold rows mixed in, a 5-row qualification set). Five simulated
annotators of different reliability work through it, each as their own principal: a careful one, two good ones, a
less careful one, and a spammer who answers the qualification set with care and everything after at random. keel
hands out the tasks, scores everyone on the gold rows, flags who falls short and leaves them out (their rows go back
to the pool), takes Dawid-Skene's consensus, sends the doubtful rows to an expert and exports the labels as a dataset
version whose lineage reaches the data, the guideline and the annotations. The dataset's own diagnoses are the truth
the simulation answers from, so the chapter can say how good the labels came out.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from keel.cli.output import console, esc, fmt_num
from keel.core.actor import acting_as
from keel.core.errors import NotFound, PermissionDenied

PROJECT = "breast-cancer-diagnosis"
ROWS = 150
CLASSES = ("malignant", "benign")  # target 0 and 1 in scikit-learn's data
SHOWN = ("mean radius", "mean texture", "mean concavity", "worst area")
CROWD = {"ana": 0.97, "ben": 0.93, "chen": 0.9, "dev": 0.85, "spam": 0.5}  # chance of the right answer
GUIDELINE = """# Diagnosis from the cell nuclei measurements

Label each sample **malignant** or **benign**.

- Large, irregular nuclei (high *mean radius*, *worst area*, *mean concavity*) point to **malignant**.
- When unsure, pick the more likely answer: an expert reviews the rows the crowd disagrees on.

Keys: `1` malignant, `2` benign, `Enter` submits.
"""


def labeling(frame: Any, dataset_ref: str, home: Path) -> Path:
    """Run the chapter; returns the label report (HTML)."""
    import keel.data
    import keel.label
    from keel.label.report import render_report
    from keel.label.status import project_status

    truth = {str(i): CLASSES[int(t)] for i, t in enumerate(frame["target"].head(ROWS))}
    try:
        project = keel.label.get_project(PROJECT)
    except NotFound:
        sample = frame.head(ROWS)[list(SHOWN)].copy()
        sample["known"] = [truth[str(i)] if i % 10 == 0 else None for i in range(ROWS)]  # gold: every 10th row
        source = keel.data.log(sample, "breast-cancer.to-label", parents=[dataset_ref], run=False)
        qualification = {str(i): truth[str(i)] for i in range(1, 6)}
        project = keel.label.create_project(
            PROJECT, source.ref, classes=CLASSES, guideline=GUIDELINE, overlap=3, fields=SHOWN, gold="known",
            gold_rate=0.1, qualification=qualification, qualification_pass=0.6,
        )  # fmt: skip
    console.print(
        f"label project [bold]{esc(project.name)}[/] over {esc(project.dataset)}: {project.items} rows, {project.overlap} "
        f"annotators each, {project.gold_items} gold rows, a {project.qualification_items}-row qualification set"
    )
    answered = _crowd(truth, CROWD)
    if answered:
        console.print(f"{len(answered)} annotators answered {sum(answered.values())} tasks: "
                      + ", ".join(f"{n} {c}" for n, c in answered.items()))  # fmt: skip
    status = project_status(PROJECT)
    excluded = {e.annotator for e in keel.label.exclusions(PROJECT)}
    for row in status.annotators:
        if row["flagged"] and row["annotator"] not in excluded:
            keel.label.exclude(PROJECT, row["annotator"], f"flagged: {row['reason']}")
            excluded.add(row["annotator"])
            console.print(f"[yellow]excluded {esc(row['annotator'])}[/]: {esc(row['reason'])}")
    again = _crowd(truth, {name: skill for name, skill in CROWD.items() if name not in excluded})
    if again:
        console.print(f"their rows went back to the pool: {sum(again.values())} more answers by the others")
    _expert_review(truth)
    _audit(truth)
    labels = keel.label.consensus_labels(PROJECT)
    done = labels[labels["finished"]]
    accuracy = sum(truth[k] == v for k, v in zip(done["item"], done["label"], strict=True)) / max(1, len(done))
    version = keel.label.export(PROJECT)
    console.print(
        f"consensus (Dawid-Skene, spammer left out, doubtful rows reviewed): {len(done)} rows labelled, "
        f"{fmt_num(100 * accuracy)}% agree with the diagnoses; exported as dataset [bold]{esc(version.ref)}[/] "
        f"(lineage: {esc(project.dataset)}, guideline v{project.guideline_version}, the annotations)"
    )
    report = home / "reports" / "labels.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render_report(project_status(PROJECT)), encoding="utf-8")
    console.print(f"progress, agreement, annotator scores, confusion, review queue: [bold]{esc(report)}[/]")
    return report


def _crowd(truth: dict[str, str], crowd: dict[str, float]) -> dict[str, int]:
    """Each annotator takes a task in turn until nobody gets one; returns tasks answered per annotator."""
    import keel.label

    rng = random.Random(len(keel.label.annotations_of(PROJECT)))  # the same answers each run, a new draw per round
    active = dict(crowd)
    answered = dict.fromkeys(crowd, 0)
    while active:
        for name, skill in list(active.items()):
            with acting_as(name):
                try:
                    task = keel.label.next_task(PROJECT)
                except PermissionDenied as exc:  # failed the qualification, or excluded
                    console.print(f"[yellow]{esc(name)}[/]: {esc(exc.message)}")
                    del active[name]
                    continue
                if task is None:
                    del active[name]
                    continue
                right = truth[task.item]
                wrong = next(c for c in CLASSES if c != right)
                careful = task.qualification and name == "spam"  # careful while tested, at random after
                answer = right if careful or rng.random() < skill else wrong
                keel.label.submit(PROJECT, task.item, answer, request_id=f"{name}-{task.item}")
                answered[name] += 1
    return {n: c for n, c in answered.items() if c}


def _expert_review(truth: dict[str, str]) -> None:
    """An expert (who knows the diagnosis) settles the rows the crowd is least sure of."""
    import keel.label

    queue = keel.label.review_queue(PROJECT, threshold=0.9)
    with acting_as("expert"):
        for item in queue["item"].head(10):
            keel.label.review(PROJECT, item, truth[item], note="settled from the pathology report")
    if len(queue):
        console.print(f"review queue: {len(queue)} rows below 90% confidence; the expert settled {min(10, len(queue))}")


def _audit(truth: dict[str, str]) -> None:
    """An auditor re-labels a random sample of finished rows: how often the crowd's labels held up."""
    import keel.label

    sample = keel.label.audit_sample(PROJECT, 12, seed=7)
    with acting_as("auditor"):
        for item in sample["item"]:
            keel.label.audit(PROJECT, item, truth[item], note="re-read blind")
    summary = keel.label.audit_summary(keel.label.reviews_of(PROJECT, kind="audit"))
    if summary.audited and summary.low is not None and summary.high is not None:
        console.print(
            f"audit: {summary.audited} finished rows re-labelled blind, {summary.confirmed} confirmed, {summary.corrected} "
            f"corrected: label accuracy {fmt_num(100 * (summary.accuracy or 0))}% (95% interval "
            f"{fmt_num(100 * summary.low)}-{fmt_num(100 * summary.high)}%)"
        )
