"""The command line's output: results on stdout, progress on stderr only at a terminal, secrets hidden."""

from __future__ import annotations

import io

import pytest

from cli.render import Out, progress
from cli.sanitize import Redactor


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_is_drawn_on_stderr_when_it_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = Terminal()
    monkeypatch.setattr("sys.stderr", stderr)

    with progress("verify", unit="job") as bar:
        bar.update(3)

    assert stderr.getvalue().startswith("\rverify: 0job")  # redrawn at most every 0.1 s, then erased


def test_no_progress_bar_when_stderr_is_a_pipe_or_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)

    with progress("verify", unit="job") as bar:
        bar.update(3)

    assert stderr.getvalue() == ""


def test_json_results_are_one_object_a_line_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    out = Out(json_lines=True)

    out.result({"jobId": "a", "text": "東京"}, "human text")
    out.summary("1 job")

    assert capsys.readouterr().out == '{"jobId": "a", "text": "東京"}\n'


def test_every_line_hides_the_secrets_it_was_given(capsys: pytest.CaptureFixture[str]) -> None:
    out = Out(json_lines=False, redactor=Redactor(["k3y-value", ""]))

    out.result({}, "job id 'k3y-value' is not a UUID")
    out.say("left out k3y-value")

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "job id '<redacted>' is not a UUID\n",
        "left out <redacted>\n",
    )
