"""Tiny corpora in the exact published layouts, for the importer tests.

Each ``write_<format>(root)`` builds a handful of items under ``root`` and returns ``root``
(the ``src`` to import). The layouts and file formats follow the releases:

- FER+: Kaggle ``fer2013.csv`` (emotion,pixels,Usage) + Microsoft's ``fer2013new.csv``
  (Usage,Image name,neutral,…,unknown,NF), row-aligned; rows 0 and 1 are FER+'s own first rows,
  two image names repeat. The same rows in Microsoft's folders: ``data/FER2013Train|Valid|Test/``
  with a header-less ``label.csv`` and the PNGs.
- RAF-DB: ``basic/EmoLabel/list_patition_label.txt`` + ``basic/Image/aligned/*_aligned.jpg``,
  optionally ``basic/EmoLabel/distribution.txt`` (RAF-ML's name and format).
- AffectNet: ``Manually_Annotated_file_lists/{training,validation}.csv`` + images.
- CREMA-D: ``AudioWAV/`` + ``finishedResponses.csv`` as R's write.csv writes it (or
  ``processedResults/tabulatedVotes.csv``).
- RAVDESS: ``Audio_Speech_Actors_01-24/Actor_NN/03-01-…wav`` and the song folder.
- EmoDB: ``wav/03a01Fa.wav`` (speaker, text, emotion letter, version) and ``lablaut/``.
- IEMOCAP: ``Session*/dialog/EmoEvaluation/*.txt`` + ``Session*/sentences/wav/<dialog>/``.
- MSP-Podcast: ``Labels/labels_consensus.csv`` + ``Labels/labels_detailed.csv`` + ``Audios/``.
- MSP-IMPROV: ``Evaluation.txt`` + ``session<k>/S01A/P/*.wav``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

SR = 16000


def tree_hash(root: Path) -> dict[str, str]:
    """relative path → sha256 of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_image(path: Path, size: int = 48, seed: int = 0, fmt: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def write_wav(path: Path, seconds: float = 0.2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * rng.standard_normal(int(SR * seconds)), SR, subtype="PCM_16")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- FER+

FERPLUS_NEW_HEADER = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                      "contempt,unknown,NF")
# (Usage, image name, 10 votes, FER label): rows 0, 1 and 2 as in FER+'s fer2013new.csv; rows 3
# and 8 repeat an image name (the official file names three images twice): the later row wins.
FERPLUS_ROWS = [
    ("Training", "fer0000000.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0], 0),
    ("Training", "fer0000001.png", [6, 0, 1, 1, 0, 0, 0, 0, 2, 0], 0),
    ("Training", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], 2),
    ("Training", "fer0000001.png", [0, 7, 0, 1, 0, 0, 0, 1, 1, 0], 3),
    ("PublicTest", "fer0000003.png", [1, 0, 0, 0, 0, 0, 0, 0, 3, 6], 4),
    ("PublicTest", "fer0000004.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0], 3),
    ("PrivateTest", "fer0000005.png", [0, 0, 6, 0, 0, 0, 4, 0, 0, 0], 5),
    ("PrivateTest", "fer0000006.png", [2, 0, 0, 5, 0, 0, 0, 0, 1, 2], 4),
    ("PrivateTest", "fer0000006.png", [0, 0, 0, 1, 0, 0, 0, 0, 1, 8], 4),  # mostly not-a-face
]
# what an import keeps: item id → (row index that won, split)
FERPLUS_KEPT = {"fer0000000": (0, "train"), "fer0000001": (3, "train"),
                "fer0000004": (5, "val"), "fer0000005": (6, "test")}
FERPLUS_FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid",
                   "PrivateTest": "FER2013Test"}


def ferplus_pixels(i: int) -> np.ndarray:
    return np.random.default_rng(100 + i).integers(0, 256, (48, 48), dtype=np.uint8)


def write_ferplus(root: Path, bad_votes_row: int | None = None) -> Path:
    """The Kaggle layout: fer2013.csv + fer2013new.csv, row-aligned; with ``bad_votes_row``
    that row's votes in fer2013new.csv are garbled."""
    fer = ["emotion,pixels,Usage"]
    new = [FERPLUS_NEW_HEADER]
    for i, (usage, name, votes, fer_label) in enumerate(FERPLUS_ROWS):
        pixels = " ".join(str(int(v)) for v in ferplus_pixels(i).ravel())
        fer.append(f'{fer_label},{pixels},{usage}')
        cells = [str(v) for v in votes]
        if i == bad_votes_row:
            cells[1] = "x"
        new.append(",".join([usage, name, *cells]))
    write_text(root / "fer2013.csv", "\n".join(fer) + "\n")
    write_text(root / "fer2013new.csv", "\n".join(new) + "\n")
    return root


def write_ferplus_folders(root: Path) -> Path:
    """Microsoft's layout, as a clone of the FER+ repository looks after its
    ``generate_training_data.py``: fer2013new.csv at the top and ``data/FER2013Train|Valid|
    Test/`` each with a header-less label.csv (name, quoted box, 10 votes) and the PNGs the
    script wrote from fer2013.csv's pixels (a repeated name: the later row's PNG)."""
    new = [FERPLUS_NEW_HEADER]
    labels: dict[str, list[str]] = {folder: [] for folder in FERPLUS_FOLDERS.values()}
    for i, (usage, name, votes, _) in enumerate(FERPLUS_ROWS):
        new.append(",".join([usage, name, *map(str, votes)]))
        if not name:
            continue
        folder = root / "data" / FERPLUS_FOLDERS[usage]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ferplus_pixels(i)).save(folder / name, compress_level=0)
        labels[FERPLUS_FOLDERS[usage]].append(
            ",".join([name, '"(0, 0, 48, 48)"', *map(str, votes)]))
    write_text(root / "fer2013new.csv", "\n".join(new) + "\n")
    for folder, lines in labels.items():
        write_text(root / "data" / folder / "label.csv", "\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------- RAF-DB

RAFDB_LABELS = [("train_00001.jpg", 5), ("train_00002.jpg", 1), ("train_00003.jpg", 4),
                ("test_0001.jpg", 7)]
RAFDB_DIST = {
    "train_00001.jpg": [0.05, 0.0, 0.0, 0.10, 0.70, 0.15, 0.0],
    "train_00002.jpg": [0.80, 0.20, 0.0, 0.0, 0.0, 0.0, 0.0],
    "train_00003.jpg": [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    "test_0001.jpg": [0.0, 0.0, 0.0, 0.0, 0.25, 0.0, 0.75],
}


def write_rafdb(root: Path, distribution: bool = False, extra_line: str | None = None) -> Path:
    basic = root / "basic"
    lines = [f"{name} {label}" for name, label in RAFDB_LABELS]
    if extra_line is not None:
        lines.insert(2, extra_line)
    write_text(basic / "EmoLabel" / "list_patition_label.txt", "\n".join(lines) + "\n")
    for i, (name, _) in enumerate(RAFDB_LABELS):
        stem = Path(name).stem
        write_image(basic / "Image" / "aligned" / f"{stem}_aligned.jpg", 64, seed=i, fmt="JPEG")
        write_image(basic / "Image" / "original" / name, 64, seed=10 + i, fmt="JPEG")
    if distribution:
        text = "".join(f"{name} " + " ".join(f"{p:.2f}" for p in probs) + "\n"
                       for name, probs in RAFDB_DIST.items())
        write_text(basic / "EmoLabel" / "distribution.txt", text)
    return root


# --------------------------------------------------------------------------- AffectNet

AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
                    "expression,valence,arousal")
AFFECTNET_TRAIN = [
    ("689/0a1b2c.jpg", 1, 0.5, 0.25),
    ("689/0d4e5f.jpg", 0, -0.1, 0.0),
    ("1002/aa11bb.jpg", 8, -0.2, 0.3),   # None → excluded
    ("1002/cc22dd.jpg", 10, -2.0, -2.0),  # No-Face → excluded
]
AFFECTNET_VAL = [("303/ee33ff.jpg", 6, -0.7, 0.8)]


# AffectNet's images are whole photos, larger than a face crop, each with its face box in the
# list files: here skimage's astronaut (512×512), whose face a detector finds at this box
AFFECTNET_BOX = (178, 65, 91, 111)


def _affectnet_rows(rows, header: bool = True) -> str:
    lines = [AFFECTNET_HEADER] if header else []
    for path, expr, val, aro in rows:
        marks = ";".join(f"{v:.2f}" for v in (10.5, 20.25, 30.0, 40.75))
        box = ",".join(str(v) for v in AFFECTNET_BOX)
        lines.append(f"{path},{box},{marks},{expr},{val},{aro}")
    return "\n".join(lines) + "\n"


def affectnet_photo(seed: int) -> np.ndarray:
    """The astronaut, a little brighter or darker by ``seed`` (one photo per image)."""
    from skimage import data

    shift = int(np.random.default_rng(seed).integers(-20, 21))
    return np.clip(data.astronaut().astype(np.int16) + shift, 0, 255).astype(np.uint8)


def write_affectnet(root: Path, validation_header: bool = True) -> Path:
    lists = root / "Manually_Annotated_file_lists"
    write_text(lists / "training.csv", _affectnet_rows(AFFECTNET_TRAIN))
    write_text(lists / "validation.csv", _affectnet_rows(AFFECTNET_VAL, validation_header))
    for i, (path, *_rest) in enumerate(AFFECTNET_TRAIN + AFFECTNET_VAL):
        out = root / "Manually_Annotated_Images" / path
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(affectnet_photo(i)).save(out, format="JPEG")
    return root


# AffectNet's newer distribution: train_set/ and val_set/, each images/<n>.jpg (224×224 faces,
# already cropped) and annotations/<n>_{exp,val,aro,lnd}.npy holding one value as text
AFFECTNET_SETS = {"train_set": [("0", "1", "0.5", "0.25"), ("1", "0", "-0.1", "0.0"),
                                ("7", "8", "-0.2", "0.3")],  # None → excluded
                  "val_set": [("12", "6", "-0.7", "0.8")]}


def write_affectnet_sets(root: Path) -> Path:
    from skimage.transform import resize

    x, y, w, h = AFFECTNET_BOX
    for i, (folder, rows) in enumerate(AFFECTNET_SETS.items()):
        for j, (stem, expr, val, aro) in enumerate(rows):
            photo = affectnet_photo(10 * i + j)[y:y + h, x:x + w]
            face = (resize(photo, (224, 224), anti_aliasing=True) * 255).astype(np.uint8)
            out = root / folder / "images" / f"{stem}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(face).save(out, format="JPEG")
            notes = root / folder / "annotations"
            notes.mkdir(parents=True, exist_ok=True)
            for suffix, value in (("exp", expr), ("val", val), ("aro", aro)):
                np.save(notes / f"{stem}_{suffix}.npy", np.array(value))
            np.save(notes / f"{stem}_lnd.npy", np.zeros(136, dtype=np.float64))
    return root


# --------------------------------------------------------------------------- CREMA-D

CREMAD_CLIPS = ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_DFA_NEU_XX", "1002_ITS_SAD_XX"]
CREMAD_HEADER = ('"","localid","pos","ans","ttr","queryType","numTries","clipNum","questNum",'
                 '"subType","clipName","sessionNums","respEmo","respLevel","dispEmo","dispVal",'
                 '"dispLevel"')
# (localid, queryType, clip, respEmo, respLevel)
CREMAD_RESPONSES = [
    ("O0001", 1, "1001_DFA_ANG_XX", "A", "60"),
    ("O0002", 1, "1001_DFA_ANG_XX", "A", "70"),
    ("O0003", 1, "1001_DFA_ANG_XX", "D", "40"),
    ("O0004", 2, "1001_DFA_ANG_XX", "F", "30"),  # face-only: not a rating of the audio
    ("O0001", 1, "1001_DFA_ANG_XX", "N", "10"),  # repeated response: counted once
    ("O0001", 1, "1001_IEO_HAP_HI", "H", "80"),
    ("O0002", 1, "1001_IEO_HAP_HI", "N", "55"),
    ("O0003", 1, "1002_DFA_NEU_XX", "N", "50"),
    ("O0004", 1, "1002_DFA_NEU_XX", "N", "NA"),  # no level
    ("O0002", 3, "1002_ITS_SAD_XX", "S", "90"),  # audio-visual only: clip gets no rating
]


def write_cremad(root: Path, responses=CREMAD_RESPONSES) -> Path:
    for i, clip in enumerate(CREMAD_CLIPS):
        write_wav(root / "AudioWAV" / f"{clip}.wav", seed=i)
    lines = [CREMAD_HEADER]
    for k, (rater, query, clip, emo, level) in enumerate(responses, start=1):
        disp = clip.split("_")[2][0]
        lines.append(f'"{k}","{rater}",{k},"{emo}_{level}",2300,{query},0,'
                     f'{CREMAD_CLIPS.index(clip) + 1 if clip in CREMAD_CLIPS else 99},{k},4,'
                     f'"{clip}",{k},"{emo}","{level}","{disp}","XX",50')
    write_text(root / "finishedResponses.csv", "\n".join(lines) + "\n")
    return root


def write_cremad_tabulated(root: Path) -> Path:
    for i, clip in enumerate(CREMAD_CLIPS[:2]):
        write_wav(root / "AudioWAV" / f"{clip}.wav", seed=i)
    text = ('"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote"\n'
            '"100001",2,1,0,0,0,0,"1001_DFA_ANG_XX",3,0.667,"A"\n'
            '"100002",0,0,0,1,1,0,"1001_IEO_HAP_HI",2,0.5,"H:N"\n'
            '"200001",0,0,0,0,5,0,"1001_DFA_ANG_XX",5,1,"N"\n')
    write_text(root / "processedResults" / "tabulatedVotes.csv", text)
    return root


# --------------------------------------------------------------------------- RAVDESS

RAVDESS_FILES = [
    "Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav",
    "Audio_Speech_Actors_01-24/Actor_01/03-01-06-02-02-01-01.wav",
    "Audio_Speech_Actors_01-24/Actor_02/03-01-03-01-01-02-02.wav",
    "Audio_Song_Actors_01-24/Actor_02/03-02-05-02-01-01-02.wav",
]


def write_ravdess(root: Path) -> Path:
    for i, rel in enumerate(RAVDESS_FILES):
        write_wav(root / rel, seed=i)
    return root


def write_ravdess_actors(root: Path, n_actors: int = 8) -> Path:
    """Speech clips of actors 1..n_actors, emotions 1..8 across them (actor a: emotion
    (a − 1) mod 8 + 1, and surprised (08) for every actor), for splits and cross-corpus runs."""
    for actor in range(1, n_actors + 1):
        for emotion in sorted({(actor - 1) % 8 + 1, 8}):
            name = f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            write_wav(root / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}" / name,
                      seed=100 * actor + emotion)
    return root


# --------------------------------------------------------------------------- EmoDB

# speaker, text, emotion letter, version: four speakers, every emotion letter
EMODB_FILES = ["03a01Fa", "03a01Wa", "03b10Nc", "08a02Lb", "08b01Ea", "09a04Ta",
               "09a05Aa", "10a07Wb", "10b09Fd"]


def write_emodb(root: Path) -> Path:
    """EmoDB's release: ``wav/`` plus the label folders the importer does not read."""
    for i, stem in enumerate(EMODB_FILES):
        write_wav(root / "wav" / f"{stem}.wav", seed=20 + i)
    write_text(root / "lablaut" / f"{EMODB_FILES[0]}.lab", "0.0 1.0 d\n")
    return root


# --------------------------------------------------------------------------- IEMOCAP

IEMOCAP_S1 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()
C-E4:\tNeutral;\t()
C-F1:\tNeutral;\t(curious)
A-E3:\tval 3; act 2; dom  2;\t()
A-E4:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)
A-F1:\tval 3; act 2; dom  1;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]
C-E1:\tFrustration; Anger;\t()
C-E3:\tFrustration;\t()
C-M1:\tFrustration;\t()
A-E1:\tval 2; act 4; dom  4;\t()
A-M1:\tval 2; act 3; dom  3;\t()
"""

IEMOCAP_S5 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[1.5000 - 3.2500]\tSes05M_script01_1_F000\thap\t[4.0000, 4.0000, 3.0000]
C-E2:\tHappiness;\t()
C-E5:\tExcited;\t()
C-F5:\tOther:amused;\t()
A-E2:\tval 4; act 4; dom  3;\t()
"""


def write_iemocap(root: Path, s1_text: str = IEMOCAP_S1) -> Path:
    write_text(root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt", s1_text)
    write_text(root / "Session5/dialog/EmoEvaluation/Ses05M_script01_1.txt", IEMOCAP_S5)
    for i, turn in enumerate(["Ses01F_impro01_F000", "Ses01F_impro01_M001"]):
        write_wav(root / f"Session1/sentences/wav/Ses01F_impro01/{turn}.wav", seed=i)
    write_wav(root / "Session5/sentences/wav/Ses05M_script01_1/Ses05M_script01_1_F000.wav", seed=9)
    return root


# --------------------------------------------------------------------------- MSP

MSP_CONSENSUS = """FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
MSP-PODCAST_0001_0008.wav,A,5.333,2.0,5.333,127,Female,Train
MSP-PODCAST_0001_0019.wav,N,3.0,4.0,3.5,127,Female,Development
MSP-PODCAST_0002_0033.wav,X,4.0,4.5,4.0,Unknown,Male,Test1
"""
# (file, worker, primary, secondary, A, V, D)
MSP_DETAILED = [
    ("MSP-PODCAST_0001_0008.wav", "WORKER00001", "Angry", "Frustrated,Annoyed", "5.0", "2.0",
     "6.0"),
    ("MSP-PODCAST_0001_0008.wav", "WORKER00002", "Angry", "", "6.0", "1.0", "5.0"),
    ("MSP-PODCAST_0001_0008.wav", "WORKER00003", "Contempt", "Angry", "5.0", "3.0", "5.0"),
    ("MSP-PODCAST_0001_0019.wav", "WORKER00001", "Neutral", "", "3.0", "4.0", "4.0"),
    ("MSP-PODCAST_0001_0019.wav", "WORKER00004", "Other-Concerned", "", "3.0", "4.0", "3.0"),
    ("MSP-PODCAST_0002_0033.wav", "WORKER00002", "Happy", "Amused", "4.0", "5.0", "4.0"),
    ("MSP-PODCAST_0002_0033.wav", "WORKER00003", "Surprise", "", "4.0", "4.0", "NaN"),
]


def write_msp_podcast(root: Path, shape: str = "emodetail") -> Path:
    write_text(root / "Labels" / "labels_consensus.csv", MSP_CONSENSUS)
    if shape == "emodetail":
        lines = ["FileName,EmoDetail"] + [
            f'{f},"{w}; {p}; {s}; A:{a}; V:{v}; D:{d};"' for f, w, p, s, a, v, d in MSP_DETAILED]
    else:  # the v1.6 shape: one column per field
        lines = ["FileName,Workers,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom"] + [
            f'{f},{w},{p},"{s}",{a},{v},{d}' for f, w, p, s, a, v, d in MSP_DETAILED]
    write_text(root / "Labels" / "labels_detailed.csv", "\n".join(lines) + "\n")
    for i, name in enumerate(sorted({row[0] for row in MSP_DETAILED})):
        write_wav(root / "Audios" / name, seed=i)
    return root


MSP_IMPROV_EVALUATION = """\
UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.666667; V:2.333333; D:3.333333 ; N:3.000000;
WORKER00001; Angry; Angry,Frustrated; A:4.000000; V:2.000000; D:4.000000; N:3.000000;
WORKER00002; Angry; ; A:4.000000; V:2.000000; D:3.000000; N:3.000000;
WORKER00003; Neutral; Neutral; A:3.000000; V:3.000000; D:3.000000; N:NaN;
WORKER00003; Neutral; Neutral; A:3.000000; V:3.000000; D:3.000000; N:NaN;

UTD-IMPROV-S02H-M06-R-MM01.avi; H; A:4.000000; V:4.500000; D:3.500000 ; N:4.000000;
WORKER00004; Happy; Happy,Excited; A:4.000000; V:5.000000; D:4.000000; N:4.000000;
WORKER00005; Other; Amused; A:4.000000; V:4.000000; D:3.000000; N:4.000000;
"""


def write_msp_improv(root: Path) -> Path:
    write_text(root / "Evaluation.txt", MSP_IMPROV_EVALUATION)
    write_wav(root / "session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav", seed=1)
    write_wav(root / "session6/S02H/R/MSP-IMPROV-S02H-M06-R-MM01.wav", seed=2)
    return root


# --------------------------------------------------------------------------- folder

def write_folder_tree(root: Path) -> Path:
    write_image(root / "train" / "happy" / "a.png", seed=1)
    write_image(root / "train" / "sad" / "b.png", seed=2)
    write_image(root / "val" / "sad" / "c.png", seed=3)
    write_image(root / "test" / "happy" / "d.png", seed=4)
    write_text(root / "README.txt", "not media, ignored\n")
    return root


# the FER2013 images as Kaggle's folder copy has them: <split>/<FER2013 class>/<Usage>_<id>.jpg
FER2013_FOLDER_FILES = [
    "train/angry/Training_10118481.jpg", "train/happy/Training_10019449.jpg",
    "train/neutral/Training_10002154.jpg", "test/sad/PublicTest_10131363.jpg",
    "test/surprise/PrivateTest_10072988.jpg", "test/disgust/PrivateTest_807646.jpg",
    "test/fear/PublicTest_10153550.jpg",
]


def write_fer2013_folders(root: Path) -> Path:
    for i, rel in enumerate(FER2013_FOLDER_FILES):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ferplus_pixels(50 + i)).save(path, format="JPEG")
    return root


FOLDER_CSV = """path,label,rater,speaker,valence[1:5],activation
clips/s1_a.wav,happy,r1,s1,4,3
clips/s1_a.wav,neutral,r2,s1,3,
clips/s2_b.wav,sad,r1,s2,1,2
clips/s2_b.wav,sad,r3,s2,2,1
clips/s3_c.wav,,r2,s3,5,4
"""


def write_folder_csv(root: Path, text: str = FOLDER_CSV) -> Path:
    for i, name in enumerate(["s1_a", "s2_b", "s3_c"]):
        write_wav(root / "clips" / f"{name}.wav", seed=i)
    write_text(root / "labels.csv", text)
    return root
