"""The public SDK surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import pytest

import keel

EXPECTED = {
    "ActiveRun", "ArtifactRef", "Client", "Conflict", "Context", "Experiment", "IntegrityError", "InvalidArgument", "KeelError",
    "Metric", "NotFound", "Run", "RunPage", "RunStatus", "__version__", "active_run", "end_run", "flush", "get_client",
    "log_artifact", "log_metric", "log_metrics", "log_param", "log_params", "search_runs", "set_client", "set_tag",
    "set_tags", "start_run", "step", "pipeline",
    "log_dict", "log_text", "log_table", "log_figure", "log_image", "set_experiment", "set_store",  # issue 13
    "delete_run", "restore_run", "delete_experiment", "restore_experiment", "set_description", "ViewType",  # issue 13
    "autolog",  # issue 13: keel.autolog()
}  # fmt: skip


def test_public_names() -> None:
    assert set(keel.__all__) == EXPECTED
    for name in keel.__all__:
        assert hasattr(keel, name)


# what `import keel` must not load: database drivers, the web stack, data and ML libraries, the CLI stack
HEAVY = (
    "sqlalchemy", "alembic", "psycopg", "httpx", "fsspec", "s3fs", "pandas", "polars", "numpy", "pyarrow", "pydantic",
    "fastapi", "starlette", "uvicorn", "orjson", "sklearn", "skops", "cloudpickle", "optuna", "ray", "onnxruntime",
    "skl2onnx", "xgboost", "lightgbm", "rich", "typer", "click",
)  # fmt: skip


def test_import_keel_stays_lean() -> None:
    """``import keel`` loads keel and the standard library only; capabilities load their libraries on first use."""
    code = "import sys, keel; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    roots = {name.split(".")[0] for name in loaded}
    assert sorted(roots & set(HEAVY)) == []
    # not only the names above: nothing outside the standard library (site's own hooks aside)
    assert sorted(r for r in roots - set(sys.stdlib_module_names) if r != "keel" and not r.startswith("_")) == []


def test_capabilities_load_on_first_use() -> None:
    code = (
        "import sys, keel; assert 'pyarrow' not in sys.modules; "
        "v = keel.data; assert 'pyarrow' in sys.modules or v is not None; "
        "print(keel.tune.__name__, keel.registry.__name__, keel.evaluation.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["keel.tune", "keel.registry", "keel.evaluation"]
    import keel

    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        keel.nothing  # noqa: B018
