"""``MitigatedModel``: a fairlearn mitigator as a model that predicts from one frame.

fairlearn's ``ThresholdOptimizer`` needs the sensitive features at predict time, as a separate argument;
a registered model, a served one and ``keel.registry.load(...).predict(frame)`` get one frame. So the
mitigator is wrapped with the names of its feature columns and of its sensitive columns, and ``predict``
takes both from the frame by name. The registered version's signature lists every one of them, so
serving asks for the sensitive columns like any other input (a request without them is refused with
the missing column named). ``ExponentiatedGradient`` models need no sensitive column at predict time.

Both mitigators are randomized classifiers: fairlearn draws one number per row of a batch to pick
between the two thresholds (or the classifiers of the mixture) a row sits between. The draws come
from ``random_state`` (fixed at registration), so the same batch always gets the same predictions;
a row near a threshold may get another prediction in another batch. ``predict_proba`` gives the
probability of each prediction (fairlearn's ``_pmf_predict``), which is deterministic.

The class lives in keel (not in a test or a notebook) so that its pickle names an importable class:
loading a version needs keel and fairlearn installed, nothing else.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def quiet_fairlearn() -> Iterator[None]:
    """fairlearn 0.15 calls pandas APIs that pandas 3 deprecates (``Series.at`` growing a series); the
    warnings are about fairlearn's code, not the caller's, and tests turn warnings into errors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="fairlearn")
        warnings.filterwarnings("ignore", category=FutureWarning, module="fairlearn")
        yield


class MitigatedModel:
    """A fitted fairlearn mitigator (``ThresholdOptimizer`` or ``ExponentiatedGradient``) predicting from one
    frame: ``features`` go to the mitigator as X, ``sensitive`` (ThresholdOptimizer only) as its
    ``sensitive_features``.

    >>> model.predict(frame)   # frame holds the feature and sensitive columns  # doctest: +SKIP
    """

    def __init__(
        self, mitigator: Any, features: list[str], sensitive: list[str], *, needs_sensitive: bool, random_state: int = 0
    ) -> None:
        self.mitigator = mitigator
        self.features = list(features)
        self.sensitive = list(sensitive)
        self.needs_sensitive = needs_sensitive
        self.random_state = random_state

    @property
    def columns(self) -> list[str]:
        """The columns a frame must hold: the features, then the sensitive columns the mitigator needs."""
        extra = [c for c in self.sensitive if c not in self.features] if self.needs_sensitive else []
        return [*self.features, *extra]

    def _split(self, data: Any) -> tuple[Any, Any]:
        import pandas as pd

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data), columns=self.columns)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            from keel.core.errors import InvalidArgument

            raise InvalidArgument(f"the input has no column {', '.join(map(repr, missing))}: the mitigated model needs "
                                  f"{', '.join(self.columns)}")  # fmt: skip
        sf = None
        if self.needs_sensitive:
            sf = frame[self.sensitive[0]] if len(self.sensitive) == 1 else frame[self.sensitive]
        return frame[self.features], sf

    def predict(self, data: Any) -> np.ndarray:
        """The mitigated predictions for ``data`` (a frame with the feature and sensitive columns)."""
        X, sf = self._split(data)
        with quiet_fairlearn():
            if self.needs_sensitive:
                out = self.mitigator.predict(X, sensitive_features=sf, random_state=self.random_state)
            else:
                out = self.mitigator.predict(X, random_state=self.random_state)
        return np.asarray(out)

    def predict_proba(self, data: Any) -> np.ndarray:
        """The probability of each class being predicted for each row (the randomized classifier's distribution)."""
        X, sf = self._split(data)
        with quiet_fairlearn():
            if self.needs_sensitive:
                return np.asarray(self.mitigator._pmf_predict(X, sensitive_features=sf))
            return np.asarray(self.mitigator._pmf_predict(X))

    def __repr__(self) -> str:
        return f"MitigatedModel({type(self.mitigator).__name__}, features={self.features}, sensitive={self.sensitive})"
