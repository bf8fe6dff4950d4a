from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def orders() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "amount": rng.gamma(2.0, 10.0, n),
            "city": rng.choice(["NY", "SF", "LA"], n),
            "express": rng.random(n) > 0.7,
            "email": [f"user{i}@example.com" for i in range(n)],
        }
    )
    df.loc[::100, "amount"] = np.nan
    return df
