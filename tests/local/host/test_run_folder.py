"""The folder of a run (Azurite's data, the workers' logs): removed afterwards unless kept."""

from __future__ import annotations

import shutil

from local.host.process import run_folder


def test_a_run_folder_is_removed_afterwards() -> None:
    with run_folder("run-test-", keep=False) as folder:
        (folder / "worker.log").write_text("x")
        assert folder.is_dir()

    assert not folder.exists()


def test_a_kept_run_folder_stays_with_what_the_run_left() -> None:
    with run_folder("run-test-", keep=True) as folder:
        (folder / "worker.log").write_text("x")
    try:
        assert (folder / "worker.log").read_text() == "x"
    finally:
        shutil.rmtree(folder)
