import json

import pytest

from affectlab.engine.events import EventWriter, read_events, run_status
from affectlab.engine.rundir import RunDir


def test_emit_appends_and_read_tails_by_offset(tmp_path):
    w = EventWriter(tmp_path)
    w.emit("start", epochs=2, steps_per_epoch=4)
    w.emit("step", epoch=1, step=1, losses={"loss": 1.5})
    events, off = read_events(tmp_path)
    assert [e["type"] for e in events] == ["start", "step"]
    assert events[1]["losses"] == {"loss": 1.5} and isinstance(events[0]["time"], float)
    again, off2 = read_events(tmp_path, off)
    assert again == [] and off2 == off
    w.emit("epoch", epoch=1, metrics={"uar": 0.5})
    new, off3 = read_events(tmp_path, off)
    assert [e["type"] for e in new] == ["epoch"] and off3 > off
    assert off3 == (tmp_path / RunDir.EVENTS).stat().st_size


def test_incomplete_line_waits_for_its_newline(tmp_path):
    w = EventWriter(tmp_path)
    w.emit("start", epochs=1)
    _, off = read_events(tmp_path)
    record = json.dumps({"type": "step", "time": 1.0, "epoch": 1, "step": 1})
    with open(tmp_path / RunDir.EVENTS, "a") as fh:
        fh.write(record[:10])
    events, off2 = read_events(tmp_path, off)
    assert events == [] and off2 == off  # half a line is not consumed
    with open(tmp_path / RunDir.EVENTS, "a") as fh:
        fh.write(record[10:] + "\n")
    events, _ = read_events(tmp_path, off2)
    assert events == [json.loads(record)]


def test_non_finite_values_become_null_and_lines_are_strict_json(tmp_path):
    import numpy as np

    EventWriter(tmp_path).emit("epoch", epoch=1, metrics={"uar": float("nan"),
                                                          "acc": np.float32(0.25)})
    line = (tmp_path / RunDir.EVENTS).read_text().strip()
    rec = json.loads(line)
    assert rec["metrics"] == {"uar": None, "acc": 0.25}


def test_bad_event_type_and_offset_rejected(tmp_path):
    with pytest.raises(ValueError, match="type must be one of"):
        EventWriter(tmp_path).emit("progress")
    with pytest.raises(ValueError, match="since_offset"):
        read_events(tmp_path, -1)
    assert read_events(tmp_path / "nowhere") == ([], 0)


def test_disabled_writer_writes_nothing(tmp_path):
    EventWriter(tmp_path / "r", enabled=False).emit("start")
    assert not (tmp_path / "r" / RunDir.EVENTS).exists()


def test_run_status_follows_the_log(tmp_path):
    assert run_status(tmp_path).state == "queued"
    w = EventWriter(tmp_path)
    w.emit("start", epochs=4, steps_per_epoch=10, start_epoch=0)
    assert run_status(tmp_path).state == "running"
    w.emit("step", epoch=2, step=5, eta_s=12.0)  # 1.5 of 4 epochs done
    st = run_status(tmp_path)
    assert st.progress == pytest.approx(1.5 / 4) and st.eta_s == 12.0
    w.emit("epoch", epoch=2)
    st = run_status(tmp_path)
    assert (st.state, st.epoch, st.progress) == ("running", 2, 0.5)
    w.emit("cancelled", epoch=2)
    st = run_status(tmp_path)
    assert (st.state, st.epoch) == ("cancelled", 2) and st.progress == 0.5
    w.emit("start", epochs=4, steps_per_epoch=10, start_epoch=2)  # resumed
    assert run_status(tmp_path).state == "running"
    w.emit("error", epoch=3, message="RuntimeError: boom")
    st = run_status(tmp_path)
    assert st.state == "failed" and "boom" in st.message
    w.emit("start", epochs=4, steps_per_epoch=10, start_epoch=3)
    w.emit("end", epoch=4)
    st = run_status(tmp_path)
    assert (st.state, st.progress, st.epoch, st.message) == ("finished", 1.0, 4, "")
