"""The command line starts without torch: only commands that need a model import it."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from ecgalign.cli.main import app


def test_cli_import_does_not_import_torch() -> None:
    code = ("import sys, ecgalign.cli.main\n"
            "heavy = sorted(m for m in ('torch', 'pandas', 'ecgalign.eval', 'ecgalign.hub') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_eval_commands_come_from_the_protocol_registry() -> None:
    from ecgalign.eval.protocols import get_protocol, list_protocols

    result = CliRunner().invoke(app, ["eval", "--help"])
    assert result.exit_code == 0, result.output
    for name in list_protocols():
        if get_protocol(name).run is not None:
            assert name in result.output
    assert " all " in result.output and " shift " in result.output
    sub = CliRunner().invoke(app, ["eval", "zero-shot", "--help"])
    assert sub.exit_code == 0 and "--checkpoint" in sub.output
