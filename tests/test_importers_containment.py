"""Importers read only the corpus and write only --out: file names from label files that are
absolute or climb out with '..' are bad rows, symbolic links out of the corpus are refused
unless follow_symlinks, and numeric fields are range-checked before anything is allocated."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import fixtures_importers as fx
import pytest

from affectlab.data.importers import ImportError_, import_corpus


def _secret(tmp_path, name: str = "secret.wav"):
    """A readable file outside the corpus (the thing a hostile label file points at)."""
    return fx.write_wav(tmp_path / "outside" / name, seed=42)


def _nothing_escaped(tmp_path, out) -> None:
    """Nothing was written into the directory of the outside file, nor anywhere beside --out
    and the source."""
    assert len(list((tmp_path / "outside").iterdir())) == 1
    assert {p.name for p in tmp_path.iterdir()} <= {"outside", "src", out.name}


# -------------------------------------------------------------------- names in label files
@pytest.mark.parametrize("name", ["../../outside/secret.wav", "../Audios/../../outside/secret.wav",
                                  "ABSOLUTE"])
def test_msp_refuses_names_that_leave_the_corpus(tmp_path, name):
    secret = _secret(tmp_path)
    src = fx.write_msp_podcast(tmp_path / "src")
    name = str(secret) if name == "ABSOLUTE" else name
    consensus = src / "Labels" / "labels_consensus.csv"
    consensus.write_text(consensus.read_text() + f"{name},A,4.0,4.0,4.0,9,Male,Train\n")
    detailed = src / "Labels" / "labels_detailed.csv"
    detailed.write_text(detailed.read_text()
                        + f'{name},"WORKER00009; Angry; ; A:4.0; V:4.0; D:4.0;"\n')
    with pytest.raises(ImportError_, match="inside the corpus"):
        import_corpus("msp", src, tmp_path / "out")
    report = import_corpus("msp", src, tmp_path / "out", skip_bad=True)
    assert report.items == 3  # the published rows; the hostile one skipped and named
    assert [(b.file, b.line) for b in report.skipped] == [("Labels/labels_consensus.csv", 5)]
    assert "inside the corpus" in report.skipped[0].reason
    _nothing_escaped(tmp_path, tmp_path / "out")


def test_iemocap_refuses_a_turn_name_with_a_path(tmp_path):
    _secret(tmp_path)
    hostile = "[1.0 - 2.0]\tSes01F_x/../../../../../outside/secret\tneu\t[2.0, 2.0, 2.0]\n" \
              "A-E3:\tval 3; act 2; dom  2;\t()\n"
    src = fx.write_iemocap(tmp_path / "src", s1_text=fx.IEMOCAP_S1 + "\n" + hostile)
    with pytest.raises(ImportError_, match="Ses01F_impro01.txt"):
        import_corpus("iemocap", src, tmp_path / "out")
    report = import_corpus("iemocap", src, tmp_path / "out", skip_bad=True)
    assert report.items == 3 and len(report.skipped) == 1
    assert report.skipped[0].line == 19 and "'..'" in report.skipped[0].reason
    _nothing_escaped(tmp_path, tmp_path / "out")


def test_iemocap_summary_numbers_are_checked(tmp_path):
    bad = "[1.2.3 - 2.0]\tSes01F_impro01_F009\tneu\t[2.0, 2.0, 9.0]\n"
    src = fx.write_iemocap(tmp_path / "src", s1_text=fx.IEMOCAP_S1 + "\n" + bad)
    report = import_corpus("iemocap", src, tmp_path / "out", skip_bad=True)
    assert [r.reason for r in report.skipped] == [
        "summary times must be finite numbers and its [v, a, d] numbers in 1..5"]


@pytest.mark.parametrize("line", ["train_../../../../outside/secret.jpg 1",
                                  "train_x/../../../../../outside/secret.jpg 2"])
def test_rafdb_refuses_names_that_leave_the_corpus(tmp_path, line):
    fx.write_image(tmp_path / "outside" / "secret.jpg", 64, fmt="JPEG")
    src = fx.write_rafdb(tmp_path / "src", extra_line=line)
    with pytest.raises(ImportError_, match="inside the corpus"):
        import_corpus("rafdb", src, tmp_path / "out")
    report = import_corpus("rafdb", src, tmp_path / "out", skip_bad=True)
    assert report.items == 4 and len(report.skipped) == 1 and report.skipped[0].line == 3


def test_rafdb_label_digits_are_bounded(tmp_path):
    src = fx.write_rafdb(tmp_path / "src", extra_line="train_00009.jpg " + "9" * 5000)
    report = import_corpus("rafdb", src, tmp_path / "out", skip_bad=True)  # no crash
    assert [r.line for r in report.skipped] == [3]


# -------------------------------------------------------------------- symbolic links
def test_a_media_symlink_out_of_the_corpus_is_a_bad_row(tmp_path):
    secret = _secret(tmp_path)
    src = fx.write_ravdess(tmp_path / "src")
    victim = next(src.rglob("*.wav"))
    victim.unlink()
    victim.symlink_to(secret)  # a corpus file that is really the server's file
    with pytest.raises(ImportError_, match="resolves outside the corpus"):
        import_corpus("ravdess", src, tmp_path / "out")
    report = import_corpus("ravdess", src, tmp_path / "out", skip_bad=True)
    assert len(report.skipped) == 1 and report.skipped[0].file == victim.relative_to(src).as_posix()
    assert "--follow-symlinks" in report.skipped[0].reason
    # opted in (a corpus laid out as a symlink farm): the link is read like a file
    report = import_corpus("ravdess", src, tmp_path / "out2", follow_symlinks=True)
    assert report.n_skipped == 0


def test_a_label_file_symlinked_out_of_the_corpus_is_refused(tmp_path):
    src = fx.write_ferplus(tmp_path / "src")
    real = tmp_path / "outside" / "fer2013new.csv"
    real.parent.mkdir()
    (src / "fer2013new.csv").rename(real)
    (src / "fer2013new.csv").symlink_to(real)
    with pytest.raises(ImportError_, match="resolves outside the corpus"):
        import_corpus("ferplus", src, tmp_path / "out")
    assert import_corpus("ferplus", src, tmp_path / "out", follow_symlinks=True).items == 4


def test_a_symlinked_corpus_root_is_fine(tmp_path):
    real = fx.write_ravdess(tmp_path / "real")
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert import_corpus("ravdess", tmp_path / "alias", tmp_path / "out").n_skipped == 0


# -------------------------------------------------------------------- numbers
def test_a_twenty_digit_vote_count_is_a_bad_row_not_22_gb(tmp_path):
    """Today one 20-digit vote count makes the importer allocate until the kernel kills it; the
    import runs in a child capped at 3 GiB of address space, so today's code fails with a
    MemoryError instead of taking the machine down."""
    src = fx.write_ferplus(tmp_path / "src")
    new = src / "fer2013new.csv"
    lines = new.read_text().splitlines()
    cells = lines[1].split(",")
    cells[2] = "9" * 20
    lines[1] = ",".join(cells)
    lines[2] = lines[2].replace(",6,", ",10001,", 1)  # just above the bound
    new.write_text("\n".join(lines) + "\n")
    code = textwrap.dedent(f"""
        import json, resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from affectlab.data.importers import import_corpus
        report = import_corpus("ferplus", {str(src)!r}, {str(tmp_path / "out")!r}, skip_bad=True)
        print(json.dumps([report.items, [[r.line, r.reason] for r in report.skipped]]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    items, skipped = json.loads(proc.stdout.strip().splitlines()[-1])
    assert skipped == [[2, "vote counts must be non-negative integers (at most 10000)"],
                       [3, "vote counts must be non-negative integers (at most 10000)"]]
    # of the four kept items fer0000000 goes; fer0000001 survives through its later row
    assert items == 3


def test_parse_int_bounds():
    from affectlab.data.importers._common import parse_int

    assert parse_int("7", 1, 7) == 7 and parse_int(" 0 ", 0) == 0
    assert parse_int("8", 1, 7) is None and parse_int("-1", 0) is None
    assert parse_int("9" * 13) is None  # refused before int() sees it
    assert parse_int("999999999999") == 999_999_999_999
    assert parse_int("1.5") is None and parse_int("") is None and parse_int("x") is None


@pytest.mark.parametrize(("name", "ok"), [
    ("Audios/a.wav", True), ("a.wav", True), ("x..y.wav", True), ("../a.wav", False),
    ("a/../../b.wav", False), ("/etc/passwd", False), ("C:\\x.wav", False),
    ("..\\..\\x.wav", False), ("a\x00.wav", False), ("", False)])
def test_unsafe_relative(name, ok):
    from affectlab.data.importers._common import unsafe_relative

    assert (unsafe_relative(name) is None) is ok
