"""The Study page under AppTest: pick claims and launch (the job faked), follow, read the table
and the plots of a study directory."""

from __future__ import annotations

from app_support import open_page

from affectlab.study import claims as C
from affectlab.study.jobs import studies_dir, write_progress
from affectlab.study.report import write_report
from affectlab.study.results import claim_result, write_results


def _study(name: str = "s1"):
    out = studies_dir() / name
    results = [claim_result(C.claim("emd2-exact"), [0, 1, 2], [0.5, 0.55, 0.52],
                            [0.4, 0.42, 0.41], "tiny"),
               claim_result(C.claim("sgm-nmi"), [0, 1, 2], [0.3, 0.2, 0.4], [0.3, 0.3, 0.3],
                            "tiny")]
    write_results(results, out)
    write_report(out)
    write_progress(out, state="finished", done=6, total=6, current="", message="2 claims")
    return out


def test_study_page_without_studies_offers_the_launcher():
    at = open_page("study")
    assert at.title[0].value == "Study"
    assert any("No study yet" in i.value for i in at.info)
    assert at.multiselect(key="study_claims").options == list(C.CLAIMS)


def test_study_page_shows_results_table_and_plots():
    _study()
    at = open_page("study")
    assert at.selectbox(key="study_pick").value == "s1"
    table = at.dataframe[-1].value
    assert table["claim"].tolist() == ["emd2-exact", "sgm-nmi"]
    assert table["verdict"].tolist() == ["holds", "not shown"]
    assert len(at.get("image")) == 2  # one plot per claim
    assert at.get("download_button")


def test_study_page_launches_the_picked_claims(monkeypatch):
    calls = []

    def fake_launch(out, claims, seeds, size, threads=None):
        calls.append((out.name, claims, seeds, size, threads))
        write_progress(out, state="running", done=1, total=4, current="face-intensity s0 ce")
        return 12345

    monkeypatch.setattr("affectlab.study.jobs.launch_study", fake_launch)
    at = open_page("study")
    at.text_input(key="study_name").set_value("mine")
    at.selectbox(key="study_size").set_value("tiny")
    at.multiselect(key="study_claims").set_value(["emd2-exact"])
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert calls == [("mine", ["emd2-exact"], 3, "tiny", 1)]
    assert any("Started mine" in s.value for s in at.success)
    assert at.selectbox(key="study_pick").value == "mine"


def test_study_page_refuses_a_bad_name():
    at = open_page("study")
    at.text_input(key="study_name").set_value("../escape")
    at.button[0].click().run()
    assert any("study name" in e.value for e in at.error)
    assert not (studies_dir().parent / "escape").exists()
