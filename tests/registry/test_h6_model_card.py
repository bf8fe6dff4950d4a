"""The model card's alias history and parameters read as sentences (issue 13: ``production: v- -> v1``)."""

from __future__ import annotations

from pathlib import Path

from sklearn.linear_model import LogisticRegression

import keel
import keel.registry as registry


def test_the_alias_history_says_set_moved_and_removed_and_parameters_have_no_float_noise(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    X, y = X.head(200), y.head(200)
    with keel.start_run(experiment="cards", params={"C": 0.1 + 0.2, "solver": "lbfgs"}):
        registry.register(LogisticRegression(C=0.3, max_iter=3000).fit(X, y), "carded")
    with keel.start_run(experiment="cards"):
        registry.register(LogisticRegression(C=0.3, max_iter=3000).fit(X, y), "carded")
    registry.promote("carded", 1, "production", force=True, actor="ana", reason="first release")
    registry.promote("carded", 2, "production", force=True, actor="bo", reason="retrained")
    md, html = registry.write_card("carded", 1, tmp_path)
    text = md.read_text()
    assert "v-" not in text and "-> v-" not in text
    assert "- production: set to v1 by ana (first release)" in text
    assert "- production: v1 -> v2 by bo (retrained)" in text
    assert "- C: 0.3\n" in text and "0.30000000000000004" not in text and "- solver: lbfgs" in text
    assert "production: set to v1 by ana" in html.read_text()
