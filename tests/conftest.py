"""Shared test fixtures."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import timing_counting_spikes as tcs  # noqa: E402


@pytest.fixture
def rejected(monkeypatch, capsys):
    """The command line run in this process from a folder, for arguments it must reject before
    any work: -> (exit code, stdout, stderr). Spares a Python start per case."""
    def run(args, cwd):
        monkeypatch.chdir(cwd)
        with pytest.raises(SystemExit) as e:
            tcs.main(list(args))
        out = capsys.readouterr()
        return e.value.code, out.out, out.err
    return run
