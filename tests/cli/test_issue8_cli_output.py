"""Issue 8: the CLI prints user data as text, never as Rich markup, and no escape sequence
or bidi control from user data reaches the terminal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from keel.testing.cli import keel_cmd
from keel.tracking.client import Client

TAG = "\x1b[31mred\x1b[0m"
ARTIFACT = "[bold]report.txt"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A project whose runs carry markup, escape sequences and bidi controls in their params, tags and artifacts."""
    folder = tmp_path_factory.mktemp("hostile")
    client = Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    a = client.create_run("issue8", "first", params={"p": "[/]", "q": "[bold red]loud[/bold red]"}, capture_code=False)
    client.set_tags(a.id, {"t": TAG, "bidi": "abc\u202edcba", "bell": "ding\x07\x9b2J"})
    client.log_bytes(a.id, b"hello", ARTIFACT)
    client.log_metric(a.id, "m", 1.0)
    b = client.create_run("issue8", "second", params={"p": "plain", "q": "x"}, capture_code=False)
    client.log_metric(b.id, "m", 2.0)
    for run in (a, b):
        client.end_run(run.id)
    client.close()
    return folder, a.id, b.id


def _assert_safe(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    for byte in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert byte not in done.stdout and byte not in done.stderr, (byte, done.stdout)


def test_runs_list_prints_markup_in_params_as_text(hostile: tuple[Path, str, str]) -> None:
    folder, _, _ = hostile
    done = keel_cmd(folder, "runs", "list")
    _assert_safe(done)
    assert "[/]" in done.stdout and "[bold red]loud[/bold red]" in done.stdout
    assert "first" in done.stdout and "second" in done.stdout
    as_json = keel_cmd(folder, "runs", "list", "--json")  # machine output keeps the values exactly
    assert {r["params"]["p"] for r in json.loads(as_json.stdout)} == {"[/]", "plain"}


def test_runs_show_prints_params_tags_and_artifacts_literally(hostile: tuple[Path, str, str]) -> None:
    folder, first, _ = hostile
    done = keel_cmd(folder, "runs", "show", first)
    _assert_safe(done)
    out = done.stdout
    assert "[/]" in out and "[bold red]loud[/bold red]" in out and ARTIFACT in out
    assert "\\x1b[31mred\\x1b[0m" in out  # the escape sequence shown, not obeyed
    assert "abc\\u202edcba" in out and "ding\\x07\\x9b2J" in out


def test_runs_compare_prints_markup_in_params_as_text(hostile: tuple[Path, str, str]) -> None:
    folder, first, second = hostile
    done = keel_cmd(folder, "runs", "compare", first, second)
    _assert_safe(done)
    assert "[/]" in done.stdout and "plain" in done.stdout


def test_dataset_columns_with_markup_are_printed_as_text(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("[/],[bold]price,qty\n1,2.5,3\n4,5.5,6\n")
    logged = keel_cmd(tmp_path, "data", "log", "orders.csv", "--name", "orders")
    _assert_safe(logged)
    shown = keel_cmd(tmp_path, "data", "show", "orders")
    _assert_safe(shown)
    assert "[/]" in shown.stdout and "[bold]price" in shown.stdout


def test_clean_makes_control_characters_visible() -> None:
    from keel.cli.output import clean, esc

    assert clean("a\x1b[2Jb\u202ec\x00\tend\n") == "a\\x1b[2Jb\\u202ec\\x00\tend\n"
    assert esc("[/]") == "\\[/]" and esc("plain [31m") == "plain [31m"
