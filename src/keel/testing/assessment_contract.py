"""The contract of model version assessments (``ModelStore.add_assessment`` / ``assessments``) and of promotion gates
that read them, as tests every backend must pass."""

from __future__ import annotations

import json
import math

import pytest

from keel.core.errors import InvalidArgument, NotFound, PromotionRefused
from keel.core.models import Assessment, ModelVersion
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique

SHA = "c" * 64
REPORT = "e" * 64
DP = "fairness.demographic_parity_difference"


def register(store: MetadataStore, name: str, metrics: dict[str, float] | None = None) -> ModelVersion:
    return store.models.create_version(
        name, flavor="sklearn", artifact_sha256=SHA, size=100, signature={"inputs": []}, metrics=metrics or {}
    )


def fairness(name: str, version: int, dp: float, **extra: float) -> Assessment:
    details = {"sensitive": ["sex"], "groups": {"sex": {"F": {"selection_rate": 0.4}, "M": {"selection_rate": 0.4 + dp}}}}
    return Assessment(name, version, "fairness", {"demographic_parity_difference": dp, **extra}, details, REPORT)


class AssessmentContract:
    def test_an_assessment_is_kept_with_its_version_and_leaves_the_version_as_it_was(self, store: MetadataStore) -> None:
        name = unique("model")
        v1 = register(store, name, {"auc": 0.9})
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        given = fairness(name, 1, 0.07, equalized_odds_difference=0.12)
        given = Assessment(**{**{f: getattr(given, f) for f in given.__dataclass_fields__}, "run_id": run.id})
        stored = store.models.add_assessment(given)
        assert stored.id > 0 and stored.created_at > 0 and stored.created_by
        assert (stored.model, stored.version, stored.kind, stored.run_id) == (name, 1, "fairness", run.id)
        assert stored.metrics == {"demographic_parity_difference": 0.07, "equalized_odds_difference": 0.12}
        assert stored.details == given.details and stored.artifact_sha256 == REPORT
        assert store.models.assessments(name, 1) == [stored]
        assert store.models.get_version(name, 1) == v1  # the registered metrics never change
        events = store.audit.events(entity="model_version", entity_id=f"{name}/1")
        assert events[-1].action == "models.add_assessment"
        assert json.loads(events[-1].after or "{}")["metrics"] == stored.metrics

    def test_assessments_list_oldest_first_and_by_kind(self, store: MetadataStore) -> None:
        name = unique("model")
        register(store, name)
        register(store, name)
        a = store.models.add_assessment(fairness(name, 1, 0.3))
        b = store.models.add_assessment(Assessment(name, 1, "robustness", {"accuracy_under_noise": 0.8}))
        c = store.models.add_assessment(fairness(name, 1, 0.05))
        store.models.add_assessment(fairness(name, 2, 0.5))
        assert [x.id for x in store.models.assessments(name, 1)] == [a.id, b.id, c.id]
        assert [x.id for x in store.models.assessments(name, 1, kind="fairness")] == [a.id, c.id]
        assert store.models.assessments(name, 1, kind="privacy") == []
        assert [x.metrics[DP.split(".")[1]] for x in store.models.assessments(name, 2)] == [0.5]

    def test_an_assessment_of_no_version_is_not_found(self, store: MetadataStore) -> None:
        name = unique("model")
        register(store, name)
        with pytest.raises(NotFound, match="no version 2"):
            store.models.add_assessment(fairness(name, 2, 0.1))
        with pytest.raises(NotFound, match="does not exist"):
            store.models.add_assessment(fairness(unique("nomodel"), 1, 0.1))
        with pytest.raises(NotFound):
            store.models.assessments(name, 3)
        with pytest.raises(NotFound, match="run"):
            store.models.add_assessment(Assessment(name, 1, "fairness", {"x": 1.0}, run_id="0" * 32))
        assert store.models.assessments(name, 1) == []

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("metrics", {"dp": math.nan}, "finite"),
            ("metrics", {"dp": math.inf}, "finite"),
            ("metrics", {"dp": "0.1"}, "finite"),
            ("metrics", {"dp": True}, "finite"),
            ("metrics", {"has space": 0.1}, "metric name"),
            ("metrics", [("dp", 0.1)], "mapping"),
            ("kind", "Fairness", "kind"),
            ("kind", "fair.ness", "kind"),
            ("kind", "", "kind"),
            ("details", {"x": math.nan}, "details"),
            ("details", {"x": object()}, "details"),
            ("artifact_sha256", "xyz", "sha256"),
            ("run_id", "not-a-run", "run_id"),
        ],
    )
    def test_bad_assessments_are_refused_and_write_nothing(
        self, store: MetadataStore, field: str, value: object, message: str
    ) -> None:
        name = unique("model")
        register(store, name)
        fields = {"model": name, "version": 1, "kind": "fairness", "metrics": {"dp": 0.1}, field: value}
        with pytest.raises(InvalidArgument, match=message):
            store.models.add_assessment(Assessment(**fields))  # type: ignore[arg-type]
        assert store.models.assessments(name, 1) == []

    # promotion gates ----------------------------------------------------------------------------------------------------
    def test_a_gate_on_an_assessed_metric_refuses_then_admits_after_a_new_assessment(self, store: MetadataStore) -> None:
        name = unique("model")
        register(store, name, {"auc": 0.9})
        rules = ["auc >= 0.8", f"{DP} <= 0.1"]
        with pytest.raises(InvalidArgument, match=DP):  # no assessment yet: a rule on a missing metric, as for any metric
            store.models.move_alias(name, "production", 1, rules=rules, actor="ana")
        store.models.add_assessment(fairness(name, 1, 0.25))
        with pytest.raises(PromotionRefused) as refused:
            store.models.move_alias(name, "production", 1, rules=rules, actor="ana")
        assert f"'{DP} <= 0.1'" in str(refused.value) and "0.25" in str(refused.value)
        assert "auc" not in str(refused.value).split("refused:")[1]  # only the failed rule is named
        failed = [c for c in refused.value.checks or [] if not c["passed"]]
        assert [(c["metric"], c["candidate"]) for c in failed] == [(DP, 0.25)]
        store.models.add_assessment(fairness(name, 1, 0.04))  # the latest assessment of the kind counts
        moved = store.models.move_alias(name, "production", 1, rules=rules, actor="ana")
        assert moved.gated and moved.to_version == 1
        assert {c["metric"]: c["candidate"] for c in moved.checks or []} == {"auc": 0.9, DP: 0.04}
        assert store.models.get_version(name, 1).metrics == {"auc": 0.9}

    def test_a_registered_metric_named_like_an_assessed_one_never_passes_a_gate_for_it(self, store: MetadataStore) -> None:
        name = unique("model")
        register(store, name, {DP: 0.0})  # fairness.* snapshotted from a run: not an assessment of this version
        with pytest.raises(InvalidArgument, match=DP):  # no assessment: the rule finds nothing, it does not pass
            store.models.move_alias(name, "production", 1, rules=[f"{DP} <= 0.05"], actor="ana")
        store.models.add_assessment(fairness(name, 1, 0.3))
        with pytest.raises(PromotionRefused, match=r"0\.3"):  # the assessment's number, never the registered 0.0
            store.models.move_alias(name, "production", 1, rules=[f"{DP} <= 0.05"], actor="ana")

    def test_baseline_rules_read_the_holders_assessment_too(self, store: MetadataStore) -> None:
        name = unique("model")
        register(store, name)
        register(store, name)
        store.models.add_assessment(fairness(name, 1, 0.08))
        store.models.move_alias(name, "production", 1, force=True, actor="ana")
        store.models.add_assessment(fairness(name, 2, 0.12))
        with pytest.raises(PromotionRefused, match="baseline"):
            store.models.move_alias(name, "production", 2, rules=[f"{DP} <= baseline"], actor="ana")
        store.models.add_assessment(fairness(name, 2, 0.06))
        moved = store.models.move_alias(name, "production", 2, rules=[f"{DP} <= baseline"], actor="ana")
        assert [(c["candidate"], c["baseline"]) for c in moved.checks or []] == [(0.06, 0.08)]

    def test_the_latest_assessment_of_each_kind_is_read_and_kinds_do_not_mix(self, store: MetadataStore) -> None:
        name = unique("model")
        register(store, name, {"demographic_parity_difference": 0.9})  # a registered metric of the bare name
        store.models.add_assessment(Assessment(name, 1, "robustness", {"demographic_parity_difference": 0.5}))
        store.models.add_assessment(fairness(name, 1, 0.02))
        store.models.add_assessment(Assessment(name, 1, "robustness", {"noise_accuracy": 0.7}))
        moved = store.models.move_alias(
            name, "staging", 1, actor="ana",
            rules=[f"{DP} <= 0.05", "robustness.noise_accuracy >= 0.6", "demographic_parity_difference >= 0.9"],
        )  # fmt: skip
        assert {c["metric"]: c["candidate"] for c in moved.checks or []} == {
            DP: 0.02, "robustness.noise_accuracy": 0.7, "demographic_parity_difference": 0.9,
        }  # fmt: skip
        # the earlier robustness assessment is replaced whole by the latest: its metric is gone
        with pytest.raises(InvalidArgument, match=r"robustness\.demographic_parity_difference"):
            store.models.move_alias(name, "production", 1, actor="ana", rules=["robustness.demographic_parity_difference <= 1"])
