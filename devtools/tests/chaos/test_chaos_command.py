"""`medallion chaos`: its verdict and where it may write."""

import pytest
from medallion_devtools.chaos.chaos import Figures, format_figures

from medallion_platform.cli import main

pytestmark = pytest.mark.reliability


def test_the_verdict_fails_on_a_lost_row_a_duplicate_a_corrupt_table_or_a_hung_rerun():
    assert not Figures(trials=3, kills=3, unexpected_rows=0).failed
    for broken in ({"lost_rows": 1}, {"duplicated_rows": 1}, {"corrupt_tables": 1}, {"hung_reruns": 1}):
        figures = Figures(trials=3, **broken)
        assert figures.failed, broken
        assert format_figures(figures).splitlines()[-1].startswith("FAILED: 1 ")


def test_chaos_refuses_a_work_dir_it_did_not_make(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("not chaos output")
    assert main(["chaos", "--work-dir", str(tmp_path), "--trials", "0"]) == 2
    assert "holds files chaos did not make" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_chaos_help_prints_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["chaos", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    for default in ("(default: 5000)", "(default: 5)", "(default: 7)", "(default: chaos_results)"):
        assert default in out
