"""Consensus: one label per item from several annotators' answers, with a confidence in [0, 1].

- ``majority_vote``: the most chosen class; ties go to the class listed first (the schema's order), so the result
  never depends on row order; confidence is the winner's share of the votes.
- ``dawid_skene``: EM over one confusion matrix per annotator (Dawid & Skene 1979), started from the majority vote's
  vote shares as crowd-kit does; the confidence is the posterior of the chosen class, and the confusion matrices
  (P(answer | true class)) come back for the report.
- ``glad``: EM over an ability per annotator and a difficulty per item (Whitehill et al. 2009), crowd-kit's
  parametrisation (P(correct) = sigmoid(ability * exp(beta)), N(1, 1) priors, uniform class priors).
- ``consensus``: the project-level entry: by the schema's kind, multilabel as one binary decision per class (the
  item's confidence is the least sure class's), spans one label per character (the item's confidence is the mean over
  its characters; runs of one label become spans), numbers the median (confidence: the share of answers within 5% of
  the scale of the median; the scale is the schema's range, else the answers' range).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidArgument
from keel.core.labeling import LabelSchema
from keel.label.frames import OUTSIDE, infer_schema, require_pandas, units

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["METHODS", "DawidSkeneResult", "GladResult", "consensus", "dawid_skene", "glad", "majority_vote"]

METHODS = ("dawid_skene", "majority", "glad", "median")
COLUMNS = ["item", "label", "confidence", "annotations", "method"]
_EPS = 1e-10
NUMBER_TOLERANCE = 0.05


@dataclass(frozen=True)
class DawidSkeneResult:
    """Dawid-Skene's labels, the posterior of every class per item, and each annotator's confusion matrix."""

    labels: pd.DataFrame  # item, label, confidence, annotations, method
    posteriors: pd.DataFrame  # items x classes
    confusion: dict[str, pd.DataFrame]  # annotator -> true class (rows) x answer (columns): P(answer | true)
    priors: dict[str, float]
    iterations: int


@dataclass(frozen=True)
class GladResult:
    """GLAD's labels and posteriors, each annotator's ability and each item's difficulty."""

    labels: pd.DataFrame
    posteriors: pd.DataFrame
    ability: dict[str, float]  # alpha per annotator: > 0 better than chance, < 0 adversarial
    difficulty: dict[str, float]  # 1 / exp(beta) per item: higher is harder
    iterations: int


@dataclass(frozen=True)
class _Coded:
    items: list[Any]
    annotators: list[Any]
    classes: list[Any]
    item: np.ndarray
    annotator: np.ndarray
    code: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        import numpy as np

        k = len(self.classes)
        flat = np.bincount(self.item * k + self.code, minlength=len(self.items) * k)
        return flat.reshape(len(self.items), k).astype(float)


def _code(frame: pd.DataFrame, classes: Iterable[Any] | None) -> _Coded:
    """Integer codes for items (first-seen order), annotators and classes (``classes`` first, then unseen sorted)."""
    import numpy as np

    pd = require_pandas()
    known = list(classes) if classes is not None else []
    value, seen = pd.factorize(frame["value"], sort=False)
    all_classes = known + sorted(set(seen) - set(known), key=str)
    index = {c: i for i, c in enumerate(all_classes)}
    code = np.array([index[v] for v in seen], dtype=np.int64)[value]  # one lookup per distinct value, not per row
    item, items = pd.factorize(frame["item"], sort=False)
    annotator, annotators = pd.factorize(frame["annotator"], sort=True)
    return _Coded(list(items), list(annotators), all_classes, item.astype(np.int64), annotator.astype(np.int64), code)


def _labels(c: _Coded, posteriors: np.ndarray, method: str) -> pd.DataFrame:
    import numpy as np

    pd = require_pandas()
    best = posteriors.argmax(axis=1)  # first maximum: the class listed first wins a tie
    return pd.DataFrame({
        "item": pd.Series(c.items, dtype=object),
        "label": pd.Series([c.classes[k] for k in best], dtype=object),
        "confidence": posteriors[np.arange(len(best)), best].astype(float),
        "annotations": np.bincount(c.item, minlength=len(c.items)).astype("int64"),
        "method": method,
    })  # fmt: skip


def _posterior_frame(c: _Coded, posteriors: np.ndarray) -> pd.DataFrame:
    pd = require_pandas()
    return pd.DataFrame(posteriors, index=pd.Index(c.items, name="item"), columns=pd.Index(c.classes, name="label"))


def majority_vote(frame: pd.DataFrame, classes: Sequence[Any] | None = None) -> pd.DataFrame:
    """The most chosen value per item; ties to the class listed first in ``classes`` (then sorted as text)."""
    c = _code(frame, classes)
    counts = c.counts
    return _labels(c, counts / counts.sum(axis=1, keepdims=True), "majority")


def dawid_skene(
    frame: pd.DataFrame, classes: Sequence[Any] | None = None, *, max_iter: int = 100, tol: float = 1e-5
) -> DawidSkeneResult:
    """Dawid-Skene EM; stops when the evidence lower bound per annotation gains less than ``tol``."""
    import numpy as np

    c = _code(frame, classes)
    n_items, k, n_ann = len(c.items), len(c.classes), len(c.annotators)
    counts = c.counts
    post = counts / counts.sum(axis=1, keepdims=True)
    priors = post.mean(axis=0)
    errors = _ds_m_step(c, post, n_ann, k)
    last = -np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        log_err = np.log(errors)
        loglik = np.log(np.clip(priors, _EPS, None))[None, :] + _sum_by_item(log_err[c.annotator, c.code, :], c.item, n_items)
        post = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        priors = post.mean(axis=0)
        errors = _ds_m_step(c, post, n_ann, k)
        elbo = _ds_elbo(c, post, priors, errors) / len(c.code)
        if elbo - last < tol:
            break
        last = elbo
    pd = require_pandas()
    confusion = {
        str(a): pd.DataFrame(errors[i].T, index=pd.Index(c.classes, name="true"), columns=pd.Index(c.classes, name="answer"))
        for i, a in enumerate(c.annotators)
    }
    return DawidSkeneResult(_labels(c, post, "dawid_skene"), _posterior_frame(c, post), confusion,
                            {str(cl): float(p) for cl, p in zip(c.classes, priors, strict=True)}, iterations)  # fmt: skip


def _sum_by_item(rows: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """Row sums of ``rows`` (annotations x classes) per item, via one bincount per class (faster than add.at)."""
    import numpy as np

    return np.stack([np.bincount(item, weights=rows[:, j], minlength=n_items) for j in range(rows.shape[1])], axis=1)


def _ds_m_step(c: _Coded, post: np.ndarray, n_ann: int, k: int) -> np.ndarray:
    """errors[annotator, answer, true]: P(answer | true), from the posteriors' soft counts."""
    import numpy as np

    flat = c.annotator * k + c.code
    soft = _sum_by_item(post[c.item], flat, n_ann * k).reshape(n_ann, k, k)
    soft = np.clip(soft, _EPS, None)
    return np.asarray(soft / soft.sum(axis=1, keepdims=True))


def _ds_elbo(c: _Coded, post: np.ndarray, priors: np.ndarray, errors: np.ndarray) -> float:
    import numpy as np

    # as crowd-kit: the prior term counted once per annotation (not per item), so both stop after the same iterations
    log_prior = np.log(np.clip(priors, _EPS, None))[None, :]
    joint = float((post[c.item] * (np.log(errors[c.annotator, c.code, :]) + log_prior)).sum())
    p = np.clip(post, _EPS, None)
    return joint - float((p * np.log(p)).sum())


def glad(frame: pd.DataFrame, classes: Sequence[Any] | None = None, *, max_iter: int = 100, tol: float = 1e-5) -> GladResult:
    """GLAD EM (E: posteriors; M: abilities and difficulties by conjugate gradient, 25 steps at most, as crowd-kit)."""
    import numpy as np
    from scipy.optimize import minimize

    c = _code(frame, classes)
    n_items, k, n_ann = len(c.items), len(c.classes), len(c.annotators)
    if k < 2:  # one class: nothing to decide
        post = np.ones((n_items, 1))
        return GladResult(_labels(c, post, "glad"), _posterior_frame(c, post), dict.fromkeys(map(str, c.annotators), 1.0),
                          dict.fromkeys(map(str, c.items), 1.0), 0)  # fmt: skip
    x = np.ones(n_ann + n_items)  # alpha per annotator, then beta per item
    log_wrong = np.log(k - 1)
    log_prior = np.log(1.0 / k)

    def e_step(x: np.ndarray) -> np.ndarray:
        ab = x[:n_ann][c.annotator] * np.exp(x[n_ann:][c.item])
        log_sig, log_not = -np.logaddexp(0.0, -ab), -np.logaddexp(0.0, ab)
        rows = np.repeat((log_not - log_wrong)[:, None], k, axis=1)
        rows[np.arange(len(ab)), c.code] = log_sig
        loglik = log_prior + _sum_by_item(rows, c.item, n_items)
        post = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        return np.asarray(post / post.sum(axis=1, keepdims=True))

    def q_and_grad(x: np.ndarray, right: np.ndarray) -> tuple[float, np.ndarray]:
        e_beta = np.exp(x[n_ann:])
        ab = x[:n_ann][c.annotator] * e_beta[c.item]
        log_sig = -np.logaddexp(0.0, -ab)  # log(1 - sigmoid(ab)) is log_sig - ab
        q = float((log_sig - (1.0 - right) * (ab + log_wrong)).sum()) - 0.5 * float(((x - 1.0) ** 2).sum())
        d = right - np.exp(log_sig)
        grad = np.concatenate([np.bincount(c.annotator, weights=d * e_beta[c.item], minlength=n_ann),
                               np.bincount(c.item, weights=d * ab, minlength=n_items)]) - (x - 1.0)  # fmt: skip
        return -q, -grad

    post = e_step(x)
    last = -np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007
        post = e_step(x)
        right = post[c.item, c.code]  # P(this answer is the true class)
        x = minimize(q_and_grad, x, args=(right,), jac=True, method="CG", tol=1e-2, options={"maxiter": 25}).x
        q = -q_and_grad(x, right)[0] / (len(c.code) * k)
        if q - last < tol:
            break
        last = q
    return GladResult(_labels(c, post, "glad"), _posterior_frame(c, post),
                      {str(a): float(v) for a, v in zip(c.annotators, x[:n_ann], strict=True)},
                      {str(i): float(np.exp(-b)) for i, b in zip(c.items, x[n_ann:], strict=True)}, iterations)  # fmt: skip


# the project-level entry ---------------------------------------------------------------------------------------------


def consensus(frame: pd.DataFrame, schema: LabelSchema | None = None, method: str = "dawid_skene",
              exclude: Iterable[str] = ()) -> pd.DataFrame:  # fmt: skip
    """One row per item: ``item, label, confidence, annotations, method``, leaving out ``exclude``'s annotators.

    ``label`` is a class, a list of classes (multilabel), a float (number) or a list of spans. Numbers always take the
    median (classes' methods do not apply to them); ``median`` for classes is an error.
    """
    pd = require_pandas()
    if method not in METHODS:
        raise InvalidArgument.for_field("method", method, f"one of {', '.join(METHODS)}")
    schema = schema or infer_schema(frame)
    excluded = {str(a) for a in exclude}
    if excluded:
        frame = frame[~frame["annotator"].astype(str).isin(excluded)]
    if not len(frame):
        return pd.DataFrame(columns=COLUMNS)
    if schema.kind == "number":
        return _median(frame, schema)
    if method == "median":
        raise InvalidArgument.for_field("method", method, "dawid_skene, majority or glad for a classes label")
    if schema.kind == "classes":
        return _run(frame[["item", "annotator", "value"]], schema.classes, method)
    u = units(frame, schema)
    answers = frame.groupby(frame["item"].astype(str), sort=False).size()
    if schema.kind == "multilabel":
        return _multilabel(u, schema, method, answers)
    return _spans(u, schema, method, answers)


def _run(frame: pd.DataFrame, classes: Sequence[Any], method: str) -> pd.DataFrame:
    if method == "majority":
        return majority_vote(frame, classes)
    if method == "glad":
        return glad(frame, classes).labels
    return dawid_skene(frame, classes).labels


def _unit_frame(u: pd.DataFrame) -> pd.DataFrame:
    return u[["unit", "annotator", "code"]].rename(columns={"unit": "item", "code": "value"})


def _multilabel(u: pd.DataFrame, schema: LabelSchema, method: str, answers: pd.Series) -> pd.DataFrame:
    pd = require_pandas()
    item_of = u.drop_duplicates("unit").set_index("unit")["item"]
    chosen: dict[str, list[str]] = {str(i): [] for i in answers.index}
    confidence: dict[str, float] = dict.fromkeys(chosen, 1.0)
    for cls in schema.classes:
        part = u[u["cls"] == cls]
        if not len(part):
            continue
        res = _run(_unit_frame(part), [0, 1], method)
        for unit, label, conf in zip(res["item"], res["label"], res["confidence"], strict=True):
            item = item_of[unit]
            if label == 1:
                chosen[item].append(cls)
            confidence[item] = min(confidence[item], float(conf))
    return pd.DataFrame({"item": list(chosen), "label": pd.Series(list(chosen.values()), dtype=object),
                         "confidence": [confidence[i] for i in chosen],
                         "annotations": [int(answers[i]) for i in chosen], "method": method})  # fmt: skip


def _spans(u: pd.DataFrame, schema: LabelSchema, method: str, answers: pd.Series) -> pd.DataFrame:
    pd = require_pandas()
    labels: dict[str, list[dict[str, Any]]] = {str(i): [] for i in answers.index}
    confidence: dict[str, float] = dict.fromkeys(labels, 1.0)
    if len(u):
        res = _run(_unit_frame(u), [OUTSIDE, *schema.classes], method)
        meta = u.drop_duplicates("unit")[["unit", "item", "char"]].rename(columns={"item": "item_of"})
        res = res.merge(meta, left_on="item", right_on="unit").sort_values(["item_of", "char"])
        for item, g in res.groupby("item_of", sort=False):
            confidence[str(item)] = float(g["confidence"].mean())
            labels[str(item)] = _runs(g["char"].tolist(), g["label"].tolist())
    return pd.DataFrame({"item": list(labels), "label": pd.Series(list(labels.values()), dtype=object),
                         "confidence": [confidence[i] for i in labels],
                         "annotations": [int(answers[i]) for i in labels], "method": method})  # fmt: skip


def _runs(chars: list[int], labels: list[str]) -> list[dict[str, Any]]:
    """Consecutive characters with one label (not outside) as spans."""
    spans: list[dict[str, Any]] = []
    for ch, label in zip(chars, labels, strict=True):
        if label == OUTSIDE:
            continue
        last = spans[-1] if spans else None
        if last is not None and last["end"] == ch and last["label"] == label:
            last["end"] = ch + 1
        else:
            spans.append({"start": ch, "end": ch + 1, "label": label})
    return spans


def _median(frame: pd.DataFrame, schema: LabelSchema) -> pd.DataFrame:
    pd = require_pandas()
    values = pd.to_numeric(frame["value"]).astype(float)
    if schema.minimum is not None and schema.maximum is not None:
        scale = schema.maximum - schema.minimum
    else:
        scale = float(values.max() - values.min())
    tolerance = NUMBER_TOLERANCE * scale
    key = frame["item"].to_numpy()
    median = values.groupby(key, sort=False).transform("median")
    near = ((values - median).abs() <= tolerance + 1e-12).groupby(key, sort=False).mean()
    g = values.groupby(key, sort=False)
    medians = g.median()
    out = pd.DataFrame({"item": medians.index.astype(object), "label": medians.to_numpy(),
                        "confidence": near.to_numpy().astype(float),
                        "annotations": g.size().to_numpy().astype("int64")})  # fmt: skip
    out["method"] = "median"
    return out[COLUMNS]
