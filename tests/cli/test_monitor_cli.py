"""``keel monitor`` as a user runs it: create, add a rule, run, status, alerts, report; bad input is one line and
exit code 2, and a report never overwrites a file keel did not write."""

from __future__ import annotations

from pathlib import Path

from keel.testing.cli import keel_cmd
from keel.testing.monitoring import store_with_traffic


def test_create_rule_run_status_alerts_report(tmp_path: Path) -> None:
    store_with_traffic(tmp_path)

    def ok(*args: str) -> str:
        done = keel_cmd(tmp_path, "monitor", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "created monitor live-1h of live" in ok(
        "create", "live-1h", "live", "--window", "1h", "--rule", "drift: drift.share > 0.5"
    )
    assert "rule area" in ok("rule", "live-1h", "area", '"drift.mean area.score" > 0.1', "--severity", "critical")
    ran = ok("run", "live-1h")
    assert "window(s) computed" in ran and "alert" in ran and "area (critical)" in ran
    assert "drift: " not in ran.split("alert", 1)[1]  # one column of 30 drifted: the share rule stays quiet
    status = ok("status")
    assert "live-1h" in status and "area" in status
    alerts = ok("alerts", "live-1h")
    assert "firing" in alerts and "mean area.score" in alerts and "log: ok" in alerts
    report = tmp_path / "report.html"
    assert "wrote" in ok("report", "live", "-o", str(report))  # a deployment with one monitor names it
    text = report.read_text()
    assert "mean area" in text and "<script" not in text

    theirs = tmp_path / "notes.html"
    theirs.write_text("my own notes")
    bad = keel_cmd(tmp_path, "monitor", "report", "live-1h", "-o", str(theirs))
    assert bad.returncode == 2 and "--output" in bad.stderr and theirs.read_text() == "my own notes"


def test_bad_rules_and_windows_are_one_line_and_exit_2(tmp_path: Path) -> None:
    store_with_traffic(tmp_path)
    for args, expected in (
        (("create", "m", "live", "--window", "soon"), "--window"),
        (("create", "m", "live", "--rule", "drift.share > 0.3"), "NAME: EXPRESSION"),
        (("create", "m", "live", "--rule", "d: drift.share >> 0.3"), "expression"),
        (("create", "m", "nowhere"), "nowhere"),
    ):
        bad = keel_cmd(tmp_path, "monitor", *args)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        lines = [line for line in bad.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in bad.stderr, (args, bad.stderr)
    assert "No monitors yet" in keel_cmd(tmp_path, "monitor", "status").stdout  # nothing was half-created


def test_scheduler_once_runs_the_monitors_and_refuses_an_unknown_import(tmp_path: Path) -> None:
    store_with_traffic(tmp_path)
    assert keel_cmd(tmp_path, "monitor", "create", "live-1h", "live", "--window", "1h").returncode == 0
    done = keel_cmd(tmp_path, "scheduler", "--once")
    assert done.returncode == 0, done.stderr
    assert "live-1h:" in done.stdout and "window(s)" in done.stdout
    status = keel_cmd(tmp_path, "monitor", "status").stdout
    assert "none yet" not in status  # the scheduler stored the windows
    bad = keel_cmd(tmp_path, "scheduler", "--once", "--import", "no_such_module_here")
    assert bad.returncode == 2 and "--import" in bad.stderr and "no_such_module_here" in bad.stderr
