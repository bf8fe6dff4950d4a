"""Layer 3: privacy. Budgets per dataset version, differentially private training that pays from them, the spends;
federated training over data silos whose rows never leave them (``federated_train``).

Needs the ``privacy`` extra (numpy, pandas, scipy, scikit-learn): ``pip install 'keel[privacy]'``.

>>> keel.privacy.set_budget("adult@1", epsilon=3.0)                                     # doctest: +SKIP
>>> keel.privacy.train("adult@1", target="income", epsilon=1.0, bounds={"age": (17, 90)})  # doctest: +SKIP
>>> keel.privacy.budget("adult@1").left                                                  # doctest: +SKIP
(2.0, 0.0)
"""

from __future__ import annotations

from keel.privacy.budget import budget, set_budget, spends, status
from keel.privacy.dp import NEIGHBOURING, DPResult, train
from keel.privacy.federated import FederatedResult, RoundRecord, aggregate, federated_train

__all__ = [
    "NEIGHBOURING", "DPResult", "FederatedResult", "RoundRecord", "aggregate", "budget", "federated_train", "set_budget",
    "spends", "status", "train",
]  # fmt: skip
