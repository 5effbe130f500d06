"""Running a study: the engine runs behind each claim, reused when finished, resumed when killed.

Layout under ``out``::

    study.json                                 the size and seeds asked for (a later call with
                                               another size is refused: its runs would differ)
    data/<corpus>/                             generated corpora and their derived datasets
    <experiment>/s<seed>/<arm>/                one engine run (a RunDir) per arm and seed
    <experiment>/s<seed>/cleanlab/fold<f>/     the peer's two fold runs; its scores in
    <experiment>/s<seed>/cleanlab/peer.json
    crowd-aggregation/s<seed>/<aggregator>/peer.json   a crowd aggregator's scores
    results.json, report.md, plots/<claim>.png (:mod:`affectlab.study.report`)

Every arm of a seed trains on the same corpus with the same training seed; runs are the
engine's own (:func:`affectlab.engine.trainer.train`), so a run killed mid-way resumes from
its last checkpoint on the next call and a finished one is read back, not retrained.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectlab.engine.config import RunConfig
from affectlab.engine.rundir import RunDir
from affectlab.fileio import atomic_write, json_safe, read_json_dict
from affectlab.study import corpora
from affectlab.study.claims import SIZES, Arm, Claim, Experiment, Size, experiment

logger = logging.getLogger(__name__)

__all__ = ["STUDY_FILE", "ArmRun", "MissingDependency", "arm_runs", "missing_dependencies",
           "run_arms", "run_config", "seed_values"]

STUDY_FILE = "study.json"
N_FOLDS = 2


class MissingDependency(RuntimeError):
    """An arm needs an optional package that is not installed."""


def missing_dependencies(arm: Arm) -> list[str]:
    return [m for m in arm.needs if importlib.util.find_spec(m) is None]


@dataclass(frozen=True)
class ArmRun:
    """One arm of one experiment at one seed: where it lives."""

    experiment: Experiment
    arm: Arm
    seed: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.experiment.id} s{self.seed} {self.arm.name}"


def arm_runs(claims: list[Claim], seeds: list[int], out: Path) -> list[ArmRun]:
    """Every (experiment, arm, seed) the claims need, each once, seed by seed."""
    seen: dict[tuple[str, str, int], ArmRun] = {}
    for seed in seeds:
        for c in claims:
            exp = experiment(c)
            for name in (c.baseline, c.method):
                key = (exp.id, name, seed)
                if key not in seen:
                    seen[key] = ArmRun(exp, exp.arm(name), seed,
                                       Path(out) / exp.id / f"s{seed}" / name)
    return list(seen.values())


# --------------------------------------------------------------------------- configs and data

def _model(exp: Experiment, size: Size) -> tuple[str, dict[str, Any]]:
    if exp.modality == "speech":
        return "convpool", dict(size.convpool)
    return "resnet18", {"width": size.face_width}


def _dataset(exp: Experiment, size: Size, seed: int, out: Path) -> Path:
    n = size.speech_n if exp.modality == "speech" else size.face_n
    path = corpora.corpus(Path(out) / "data", exp.modality, n, exp.flip_rate, seed)
    return corpora.held_out_domain(path) if exp.cross_domain else path


def run_config(job: ArmRun, size: Size, dataset: Path, out: Path | None = None) -> RunConfig:
    """The engine config of an arm's run (``out``: its run directory, default ``job.path``)."""
    exp = job.experiment
    model, model_params = _model(exp, size)
    fields: dict[str, Any] = {
        "dataset": dataset, "model": model, "model_params": model_params,
        "method": job.arm.method, "method_params": job.arm.params(size), "scale": exp.scale,
        "target": exp.target, "epochs": size.epochs, "seed": job.seed, "device": "auto",
        "out": out or job.path, "name": (out or job.path).name,
    }
    if exp.cross_domain:
        fields |= {"train_domains": [corpora.TRAIN_DOMAIN], "test_domains": [corpora.TEST_DOMAIN]}
    for key in ("lr", "batch_size"):
        if getattr(size, key) is not None:
            fields[key] = getattr(size, key)
    return RunConfig(**fields)


# --------------------------------------------------------------------------- running

_COMPARED = ("dataset", "model", "model_params", "method", "method_params", "scale", "target",
             "epochs", "seed", "lr", "batch_size", "train_domains", "test_domains")


def _engine_run(cfg: RunConfig) -> dict[str, Any]:
    """The final metrics of ``cfg``'s run: read back when finished, resumed from its last
    checkpoint when it was stopped, trained otherwise."""
    from affectlab.engine.trainer import train

    run = RunDir(cfg.run_dir())
    if run.config_path.is_file():
        saved, now = run.read_config(), cfg.to_dict()
        differ = [k for k in _COMPARED if str(saved.get(k)) != str(now.get(k))]
        if differ:
            raise ValueError(f"{run.path} holds a run with other {', '.join(differ)}; give "
                             "the study another --out")
    if run.metrics_path.is_file() and run.status().state == "finished":
        return run.read_metrics()
    result = train(cfg, progress=True, resume=run.has_checkpoint())
    if result.status != "finished":
        raise RuntimeError(f"run {run.path} ended {result.status}")
    return result.metrics


def _cleanlab_peer(job: ArmRun, size: Size, dataset: Path) -> dict[str, Any]:
    """cleanlab's self-confidence on out-of-sample probabilities: one run per half of the
    training split, each scoring the other half; AUROC for the flipped labels."""
    import pandas as pd
    from cleanlab.rank import get_label_quality_scores

    from affectlab.engine.truth import auroc_flipped

    peer = job.path / "peer.json"
    if peer.is_file():
        return read_json_dict(peer)
    tables = []
    for fold in range(N_FOLDS):
        fold_data = corpora.training_fold(dataset, fold, job.seed, N_FOLDS)
        cfg = run_config(job, size, fold_data, job.path / f"fold{fold}")
        _engine_run(cfg)
        tables.append(pd.read_parquet(RunDir(cfg.run_dir()).outputs_path("test")))
    table = pd.concat(tables, ignore_index=True)
    probs = np.stack(table["probs"].to_numpy()).astype(np.float64)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = table["label"].to_numpy(dtype=np.int64)
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    metrics = {"train": {"n": float(len(table)),
                         "auroc_flipped": auroc_flipped(1.0 - quality, table["flipped"])}}
    atomic_write(peer, lambda f: f.write(json.dumps(json_safe(metrics), indent=2).encode()))
    return metrics


def _aggregator_peer(job: ArmRun, dataset: Path) -> dict[str, Any]:
    """The crowd aggregator's soft labels of every item against the truth (accuracy of the
    argmax, mean KL, mean TV: :mod:`affectlab.data.synth.aggregation`'s measures)."""
    from affectlab.data.contract import load_dataset
    from affectlab.data.synth.aggregation import measure_aggregators

    peer = job.path / "peer.json"
    if peer.is_file():
        return read_json_dict(peer)
    data = load_dataset(dataset)
    score = measure_aggregators(data.items, data.ratings, data.class_names,
                                aggregators=(job.arm.method,))[job.arm.method]
    metrics = {"all": {"n": float(len(score.item_ids)), "accuracy": score.accuracy,
                       "kl": score.mean_kl, "tv": score.mean_tv}}
    job.path.mkdir(parents=True, exist_ok=True)
    atomic_write(peer, lambda f: f.write(json.dumps(json_safe(metrics), indent=2).encode()))
    return metrics


def run_arm(job: ArmRun, size: Size, out: Path) -> dict[str, Any]:
    """The metrics ({split: {metric: value}}) of one arm at one seed, computing what is not
    there yet."""
    missing = missing_dependencies(job.arm)
    if missing:
        raise MissingDependency(f"arm {job.arm.name!r} needs {', '.join(missing)}: pip install "
                                "'affectlab[study]'")
    dataset = _dataset(job.experiment, size, job.seed, out)
    if job.arm.kind == "cleanlab":
        return _cleanlab_peer(job, size, dataset)
    if job.arm.kind == "aggregator":
        return _aggregator_peer(job, dataset)
    return _engine_run(run_config(job, size, dataset))


def check_study_dir(out: Path, size: Size) -> None:
    """Refuse a directory that holds a study of another size; note this one's."""
    out = Path(out)
    marker = out / STUDY_FILE
    if marker.is_file():
        held = read_json_dict(marker).get("size")
        if held not in (None, size.name):
            raise ValueError(f"{out} holds a study of size {held!r}, not {size.name!r}; give "
                             "this one another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(marker, lambda f: f.write(json.dumps({"size": size.name}).encode()))


def run_arms(jobs: list[ArmRun], size: Size | str, out: Path, progress: bool = True,
             on_done: Callable[[ArmRun, dict[str, Any] | None, str | None], None] | None = None
             ) -> dict[tuple[str, str, int], dict[str, Any] | str]:
    """Run every job (tqdm over them in the foreground); returns {(experiment, arm, seed):
    metrics, or the reason it could not run}. ``on_done(job, metrics, error)`` after each."""
    size = SIZES[size] if isinstance(size, str) else size
    check_study_dir(out, size)
    results: dict[tuple[str, str, int], dict[str, Any] | str] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="study runs", unit="run", dynamic_ncols=True)
    try:
        for job in jobs:
            if bar is not None:
                bar.set_postfix_str(job.label)
            try:
                metrics: dict[str, Any] | None = run_arm(job, size, out)
                error = None
            except MissingDependency as exc:
                metrics, error = None, str(exc)
            results[(job.experiment.id, job.arm.name, job.seed)] = metrics or error or ""
            if on_done is not None:
                on_done(job, metrics, error)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def seed_values(c: Claim, seeds: list[int],
                results: dict[tuple[str, str, int], dict[str, Any] | str]
                ) -> tuple[list[float], list[float], str | None]:
    """Per-seed values of the claim's method and baseline (NaN where a run lacks the metric),
    and why the claim could not be measured (an arm that did not run), else None."""
    values: dict[str, list[float]] = {"method": [], "baseline": []}
    for seed in seeds:
        for side, arm, metric in (("method", c.method, c.metric),
                                  ("baseline", c.baseline, c.metric_of_baseline)):
            got = results.get((c.experiment, arm, seed))
            if isinstance(got, str) or got is None:
                return [], [], got or f"arm {arm!r} did not run"
            value = (got.get(c.split) or {}).get(metric)
            values[side].append(float("nan") if value is None else float(value))
    return values["method"], values["baseline"], None
