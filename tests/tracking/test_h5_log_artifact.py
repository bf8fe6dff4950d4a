"""Issue 13, helper 5: ``log_artifact`` of a path with no base name says which argument to give."""

from __future__ import annotations

from pathlib import Path

import pytest

import keel
from keel.core.errors import InvalidArgument


@pytest.mark.parametrize("path", [".", ".."])
def test_log_artifact_of_a_folder_with_no_base_name_asks_for_a_name(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_STORE", f"sqlite:///{tmp_path}/store/keel.db")  # outside the folder logged
    monkeypatch.setenv("KEEL_ARTIFACTS", str(tmp_path / "store" / "artifacts"))
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    (work / "a.txt").write_text("a")
    monkeypatch.chdir(work)
    with keel.start_run(experiment="h5-art") as run:
        with pytest.raises(InvalidArgument) as caught:
            run.log_artifact(path)
        assert caught.value.message == (f"name must be given when path {path!r} has no base name (e.g. name='outputs'); got None")
        refs = run.log_artifact(path, name="outputs")
    assert [r.path for r in refs] == (["outputs/a.txt"] if path == "." else ["outputs/sub/a.txt"])
