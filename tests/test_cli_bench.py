"""`affectlab bench` wiring and its corpus / annotate lines (tiny sizes: correctness, not speed)."""

from unittest import mock

import pandas as pd
from typer.testing import CliRunner

from affectlab.cli import app
from affectlab.engine.bench_extra import bench_annotate, bench_corpus

runner = CliRunner()


def test_bench_passes_its_options_to_run_bench():
    table = pd.DataFrame({"method": ["ce"], "ratio": [1.0]})
    with mock.patch("affectlab.engine.bench.run_bench", return_value=table) as run, \
            mock.patch("affectlab.engine.bench.format_table", return_value="THE TABLE"):
        res = runner.invoke(app, ["bench", "--steps", "3", "--batch-size", "8", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "THE TABLE" in res.output
    assert run.call_args.args == ("face", 3, 8) and run.call_args.kwargs["threads"] == 1


def test_bench_rejects_an_unknown_part():
    res = runner.invoke(app, ["bench", "--what", "everything"])
    assert res.exit_code == 2


def test_corpus_line_generates_both_modalities():
    table = bench_corpus(faces=12, utterances=10)
    assert table["corpus"].tolist() == ["face", "speech"]
    assert table["items"].tolist() == [12, 10]
    assert (table["items_per_s"] > 0).all() and table["meets"].dtype == bool


def test_annotate_line_reports_no_lost_or_duplicated_ratings():
    table = bench_annotate(raters=3, ratings_each=4)
    row = table.iloc[0]
    assert row["backend"] == "sqlite" and row["ratings"] == 12
    assert row["lost"] == 0 and row["duplicated"] == 0 and bool(row["meets"])
