import pytest
import torch

# One torch thread: tests run beside other processes on 2 cores, where more threads thrash (measured 13x slower).
torch.set_num_threads(1)


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from rl_distill.cli import main

    def run(*argv: str):
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
