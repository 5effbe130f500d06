"""The training loop: dataset → model → method → epochs, in stages with callbacks.

:func:`train` builds a :class:`Trainer` and runs its stages::

    setup         seed, device, data, method, optimisers, resume (checkpoint + RNG states),
                  config and model info written
    train_epoch   every batch of the epoch through the shared :func:`~affectlab.engine.step.train_step`
    evaluate      a prediction pass and its metrics (validation after every epoch)
    end           the final test/val evaluation, per-split outputs and final metrics

with what happens around them as callbacks (:mod:`affectlab.engine.callbacks`): the event
log the app follows, the progress bar, checkpoints (last / previous / best) and the truth
measures of generated data. Where each file goes is :class:`~affectlab.engine.rundir.RunDir`'s
business (rank 0 writes).

Determinism: the epoch's item order depends only on (seed, epoch) (DistributedSampler's
seeding), and a checkpoint stores the python / numpy / torch RNG states at the epoch boundary,
so a run resumed from epoch e ends with the same weights as one that never stopped (on CPU).

Distributed: under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised (gloo on CPU,
nccl on CUDA), the training items are sharded with DistributedSampler (method batch samplers:
whole batches dealt round-robin), and gradients are averaged over ranks after every backward
pass (:mod:`affectlab.engine.distributed`). ``batch_size`` is per process.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, DistributedSampler

from affectlab.engine.callbacks import SELECT_METRIC, Callback, StepInfo, default_callbacks
from affectlab.engine.checkpoint import load_for_resume, no_checkpoint, set_rng_state
from affectlab.engine.config import ConfigError, RunConfig
from affectlab.engine.device import place_on_device
from affectlab.engine.distributed import (
    Dist,
    agree,
    average_gradients,
    barrier,
    broadcast_state,
    close,
    init_distributed,
)
from affectlab.engine.evaluate import (
    SplitPredictions,
    classification_metrics,
    move_batch,
    predict_split,
)
from affectlab.engine.events import EventWriter
from affectlab.engine.finetune import weight_init
from affectlab.engine.rundir import CheckpointError, RunDir
from affectlab.engine.step import train_step
from affectlab.errors import UserDataError

logger = logging.getLogger(__name__)

__all__ = ["OUTPUT_SPLITS", "RunResult", "Trainer", "build_train_info", "soft_view", "train"]

# splits whose per-item outputs are saved at the end (Explore shows them); the training split's
# carry the uncertainty for each item's trained label (flip detection, SPEC §9)
OUTPUT_SPLITS = ("test", "val", "train")


@dataclass
class RunResult:
    """What :func:`train` returns. status ∈ finished | cancelled."""

    run_dir: Path
    status: str
    epochs_done: int
    metrics: dict[str, Any] = field(default_factory=dict)


class Cancelled(Exception):
    """Raised inside the loop when a cancel request is seen."""


# --------------------------------------------------------------------------- set-up helpers

def _resolve_device(config: RunConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# The legacy global numpy RNG is seeded and checkpointed on purpose: code run inside the loop
# (methods, samplers) may draw from it, and a resumed run must see the same draws.
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def _label_scale(config: RunConfig, meta) -> str:
    """The run's scale: the config's, else the dataset's label-set scale (``meta``: a
    DatasetMeta, a DatasetDir or a meta dict)."""
    from affectlab.data.schema import as_dataset_meta

    return config.scale or as_dataset_meta(meta).label_scale


def _is_ordinal(scale: str, meta) -> bool:
    """Label-set scale: meta's ``ordinal`` flag; other scales: ordinal and Likert are ordered
    (the rule is :meth:`affectlab.data.schema.DatasetMeta.is_ordered`)."""
    from affectlab.data.schema import as_dataset_meta

    return as_dataset_meta(meta).is_ordered(scale)


AUX_SCALES = ("valence", "activation")


def build_train_info(train_ds, ordinal: bool):
    """TrainSetInfo of a training :class:`EmotionDataset`.

    soft_labels: the ratings' soft labels, or the one-hot dataset labels when the dataset's
    target is "label" (a method trained on the single label sees no ratings of the scale).
    aux: per-item (valence, arousal) mean ratings from the ``valence`` and ``activation``
    Likert scales when the dataset has both (an item missing one gets that scale's mean over
    the training set), else None; aux_bounds: those scales' declared ends, (2, 2) [lows; highs].
    """
    from affectlab.labels import likert_means
    from affectlab.methods import TrainSetInfo
    from affectlab.scales import IntervalScale

    scales, ratings = train_ds.ds.schema.scales, train_ds.ds.ratings
    aux = bounds = None
    if all(isinstance(scales.get(s), IntervalScale) for s in AUX_SCALES):
        cols = []
        for s in AUX_SCALES:
            col = likert_means(ratings, train_ds.item_ids, s, scales[s])
            if np.isnan(col).all():
                cols = []
                break
            cols.append(np.where(np.isnan(col), np.nanmean(col), col))
        if cols:
            aux = torch.as_tensor(np.stack(cols, axis=1), dtype=torch.float32)
            bounds = torch.tensor([[float(scales[s].low) for s in AUX_SCALES],
                                   [float(scales[s].high) for s in AUX_SCALES]])
    labels = torch.as_tensor(train_ds.labels, dtype=torch.int64)
    if train_ds.target == "label":
        soft = torch.nn.functional.one_hot(labels, train_ds.num_classes).float()
    else:
        soft = torch.as_tensor(train_ds.soft_labels, dtype=torch.float32)
    return TrainSetInfo(n_items=len(train_ds), num_classes=train_ds.num_classes,
                        soft_labels=soft, labels=labels, aux=aux, ordinal=ordinal,
                        aux_bounds=bounds)


def soft_view(ds):
    """``ds`` with the ratings' soft labels as ``y`` (what evaluation scores against), sharing
    its decoded inputs; ``ds`` itself when it already has them or some item has no rating."""
    if ds.target == "soft" or np.isnan(ds.soft_labels).any():
        return ds
    view = copy.copy(ds)
    view.target = "soft"
    return view


def build_method(model_name: str, model_params: dict[str, Any], method_name: str,
                 method_params: dict[str, Any], info, pretrained: bool = False,
                 init: Callable[[Any], Any] | None = None):
    """Model (with ``num_classes = info.num_classes``) wrapped in the named method; ``init``
    initialises the model before the method wraps it (fine-tuning: affectlab.engine.finetune)."""
    from affectlab import methods, models

    params = dict(model_params)
    if "num_classes" in params and int(params["num_classes"]) != info.num_classes:
        raise ConfigError(f"model_params.num_classes={params['num_classes']} disagrees with the "
                          f"{info.num_classes} classes of the label scale; leave it out")
    params["num_classes"] = info.num_classes
    model = models.create(model_name, pretrained=pretrained, **params)
    if init is not None:
        init(model)
    return methods.create(method_name, model, info, **method_params), params


# --------------------------------------------------------------------------- batches

def _epoch_batches(method, train_ds, config: RunConfig, epoch: int, d: Dist) -> list[list[int]]:
    """This rank's batches (index lists) for ``epoch`` (0-based), a function of (seed, epoch)."""
    custom = method.batch_sampler(config.batch_size, epoch, config.seed)
    if custom is not None:
        batches = [[int(i) for i in b] for b in custom]
        if d.active and batches:
            # deal whole batches round-robin (a method's batch has structure, e.g. triplets),
            # cycling so every rank takes the same number of steps
            per_rank = math.ceil(len(batches) / d.world)
            padded = [batches[i % len(batches)] for i in range(per_rank * d.world)]
            batches = padded[d.rank::d.world]
        return batches
    sampler = DistributedSampler(train_ds, num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    sampler.set_epoch(epoch)
    order = list(sampler)
    batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()  # a batch of one breaks BatchNorm in training mode
    return batches


def _loader(ds, config: RunConfig, batch_sampler=None, pin: bool = False) -> DataLoader:
    if batch_sampler is not None:
        return DataLoader(ds, batch_sampler=batch_sampler, collate_fn=ds.collate_fn,
                          num_workers=config.num_workers, pin_memory=pin)
    return DataLoader(ds, batch_size=config.batch_size, shuffle=False, collate_fn=ds.collate_fn,
                      num_workers=config.num_workers, pin_memory=pin)


# --------------------------------------------------------------------------- outputs

def outputs_table(pred: SplitPredictions) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per item of the split (list-valued columns for distributions), and its (n, D)
    embeddings. The training split adds ``label_uncertainty`` (the method's uncertainty for
    the item's trained label, what ``auroc_flipped`` scores) and, for a method with
    sub-classes, ``subclass_id``."""
    cols: dict[str, Any] = {
        "item_id": pred.item_id, "split": pred.split, "domain": pred.domain,
        "label": pred.label, "pred": pred.probs.argmax(axis=1).astype(np.int64),
        "uncertainty": pred.uncertainty,
        "probs": list(pred.probs.astype(np.float32)),
        "soft_label": list(pred.soft.astype(np.float32)),
        "latent": (list(pred.latent.astype(np.float32)) if pred.latent is not None
                   else [None] * len(pred)),
    }
    if pred.label_uncertainty is not None:
        cols["label_uncertainty"] = pred.label_uncertainty
    if pred.subclass is not None:
        cols["subclass_id"] = pred.subclass
    for name, values in pred.truth.items():
        arr = np.asarray(values)
        cols[name] = list(arr.astype(np.float32)) if arr.ndim == 2 else arr
    return pd.DataFrame(cols), pred.embedding.astype(np.float32)


# --------------------------------------------------------------------------- the loop

def train(config: RunConfig, progress: bool = True, resume: bool = False,
          should_stop: Callable[[], bool] | None = None, clear_cancel: bool = True,
          callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train ``config`` to completion (or until cancelled) and write the run directory.

    progress:     tqdm bar in the foreground
    resume:       continue from the run's last checkpoint (its previous one when the last is
                  damaged); the config may raise ``epochs``; dataset, model, method, their
                  params, scale and seed must match
    should_stop:  polled every step; default: a cancel request file in the run directory.
                  A stop ends the run with a ``cancelled`` event; the last checkpoint is kept.
    clear_cancel: remove a stale cancel request first (the background worker passes False:
                  its launcher already did, and a cancel may arrive before the worker starts)
    callbacks:    more callbacks, called after the default ones
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    d = init_distributed(config)
    try:
        trainer = Trainer(config, d, [*default_callbacks(progress and d.main), *callbacks],
                          should_stop, resume)
        trainer.prepare(clear_cancel)
        return trainer.fit()
    finally:
        close(d)


class _Clock:
    """Throughput and time left, over the steps of this process's run."""

    def __init__(self, total_steps: int) -> None:
        self.start, self.total, self.steps, self.samples = time.time(), total_steps, 0, 0

    def step(self, n_items: int) -> None:
        self.steps += 1
        self.samples += n_items

    def _elapsed(self) -> float:
        return max(time.time() - self.start, 1e-9)

    def samples_per_s(self) -> float:
        return self.samples / self._elapsed()

    def eta_s(self) -> float:
        return self._elapsed() / max(self.steps, 1) * (self.total - self.steps)


class Trainer:
    """One training run: the stages (:meth:`setup`, :meth:`train_epoch`, :meth:`evaluate`,
    :meth:`end`) called by :meth:`fit`, and the state the callbacks read.

    State: ``epoch`` (epochs finished), ``start_epoch``, ``global_step``, ``history`` (one
    record per epoch), ``best`` ({epoch, metric, value}); after set-up also ``device``,
    ``amp``, ``train_ds``, ``eval_sets``, ``info``, ``method``, ``optimizers``, ``scaler``,
    ``model_info``, ``steps_per_epoch`` and ``clock``.
    """

    def __init__(self, config: RunConfig, dist: Dist, callbacks: Sequence[Callback],
                 should_stop: Callable[[], bool] | None = None, resume: bool = False) -> None:
        self.config, self.dist, self.callbacks = config, dist, list(callbacks)
        self.run = RunDir(config.run_dir())
        self.events = EventWriter(self.run.path, enabled=dist.main)
        self.stop = should_stop if should_stop is not None else self.run.cancel_requested
        self.resume, self.pid = resume, os.getpid()
        self.epoch = self.start_epoch = self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "metric": SELECT_METRIC, "value": None}
        self.resumed_from: Path | None = None
        self.head_init = None  # a HeadInit when the weights started from others (fine-tuning)
        self.data_notices: list[str] = []  # data_notices(): items left out, empty splits
        self.rotate_last = True  # False after a resume past a damaged last checkpoint

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def prepare(self, clear_cancel: bool) -> None:
        """Rank 0: the run directory, a stale cancel request cleared; refuse to start over a
        run with results (unless resuming) or to resume one without a checkpoint."""
        if not self.dist.main:
            return
        self.run.make_dir()  # marked as affectlab's when new
        if clear_cancel:
            self.run.clear_cancel()
        if not self.resume and self.run.has_results():
            raise FileExistsError(f"run directory {self.run.path} already holds a run; pass "
                                  "resume=True (--resume) to continue it or choose another out")
        if self.resume and not self.run.has_checkpoint():
            raise no_checkpoint(self.run)

    def fit(self) -> RunResult:
        """setup → (train_epoch → on_epoch_end hook → evaluate) per epoch → end, with the
        callbacks' hooks around them; a stop request ends it as cancelled."""
        try:
            self.setup()
            self._call("on_start")
            for epoch in range(self.start_epoch, self.config.epochs):
                self._run_epoch(epoch)
            final = self.end()
            self._call("on_end", final)
            return RunResult(self.run.path, "finished", self.epoch, final)
        except Cancelled:
            self._call("on_cancel", None)
            return RunResult(self.run.path, "cancelled", self.epoch, {})
        except KeyboardInterrupt:
            self._call("on_cancel", "interrupted")
            raise
        except BaseException as exc:
            self._call("on_error", exc)
            raise

    # -- stages -----------------------------------------------------------------------------

    def setup(self) -> None:
        """Everything before the first epoch, in an order a resume repeats exactly (the RNG
        states are restored last)."""
        config = self.config
        _seed_everything(config.seed)
        self.device = _resolve_device(config, self.dist.local_rank)
        self.amp = _use_amp(config, self.device)
        self._load_data()
        self._build_method()
        if self.resume:
            self._restore()
        if self.dist.main:
            self.run.write_config(config)
            self.run.write_model_info(self.model_info)
        self.steps_per_epoch = len(_epoch_batches(self.method, self.train_ds, config,
                                                  self.start_epoch, self.dist))
        self.clock = _Clock(self.steps_per_epoch * (config.epochs - self.start_epoch))

    def _load_data(self) -> None:
        from affectlab.data.contract import load_dataset
        from affectlab.data.dataset import EmotionDataset, check_domains

        config = self.config
        self.data = data = load_dataset(config.dataset)
        meta = data.meta
        self.scale = scale = _label_scale(config, meta)
        if scale not in meta.get("scales", {}):
            raise ConfigError(f"scale {scale!r} is not a scale of dataset {data.name!r} "
                              f"(known: {', '.join(meta.get('scales', {}))})")
        self.ordinal = _is_ordinal(scale, meta)
        for field_name in ("train_domains", "test_domains"):
            domains = getattr(config, field_name)
            try:
                if domains is not None:
                    check_domains(data, domains)
            except ValueError as exc:
                raise ConfigError(f"{field_name}: {exc}") from exc
        self.train_ds = EmotionDataset(data, "train", scale=scale, target=config.target,
                                       domains=config.train_domains)
        sets = {s: EmotionDataset(data, s, scale=scale, domains=(
            config.test_domains if s == "test" else config.train_domains)) for s in ("val", "test")}
        if len(self.train_ds) == 0:
            raise UserDataError(f"dataset {data.name!r} has no rated training items on scale "
                                f"{scale!r}" + (f" in domains {config.train_domains}"
                                                if config.train_domains else ""))
        self.data_notices = data_notices(self.train_ds, sets)
        sets["train"] = soft_view(self.train_ds)
        self.eval_sets = {s: ds for s, ds in sets.items() if len(ds) > 0}

    def _build_method(self) -> None:
        config = self.config
        self.info = build_train_info(self.train_ds, self.ordinal)
        # fresh, shipped or a trained run's weights, mapped to this dataset's classes (a resume
        # restores its own)
        init = None if self.resume else weight_init(config, self.train_ds.class_names)
        with _warnings_as_notices(self.data_notices):  # "classes [2] have no mass" …
            self.method, model_params = build_method(config.model, config.model_params,
                                                     config.method, config.method_params,
                                                     self.info, init=init)
        self.head_init = init.report if init is not None else None
        if self.head_init is not None:
            logger.info(self.head_init.summary())
            self.events.emit("notice", message=self.head_init.summary(),
                             init=self.head_init.to_dict())
        _check_compatible(self.method, self.data.modality, self.ordinal, config)
        self.method.attach_dataset(self.train_ds)  # LDLVA's exact mode re-reads neighbours
        place_on_device(self.method, self.device)
        self.optimizers = self.method.optimizers(config.lr, config.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        broadcast_state(self.method, self.dist)
        self.params = [p for p in self.method.parameters() if p.requires_grad]
        norms = getattr(self.train_ds, "normalizers", None)
        self.model_info = {
            "model": config.model, "model_params": model_params, "method": config.method,
            "method_params": dict(self.method.params), "class_names": self.train_ds.class_names,
            "modality": self.data.modality, "scale": self.scale, "ordinal": self.ordinal,
            "dataset": str(config.dataset),
            "normalizers": {str(k): v.to_dict() for k, v in norms.items()} if norms else None}

    def _restore(self) -> None:
        """The training state of the last checkpoint (or the previous one, with a notice)."""
        resumed = load_for_resume(self.run, self.config, self.device)
        if resumed.notice:
            self.events.emit("notice", message=resumed.notice)
            self.rotate_last = False
        state = resumed.state
        try:
            self.method.load_state_dict(state["method_state"])
            for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(opt_state)
            self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {resumed.path} does not fit the run's method: "
                                  f"{exc}") from exc
        self.start_epoch = self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history, self.best = list(state["history"]), dict(state["best"])
        self.resumed_from = resumed.path
        set_rng_state(state["rng"])

    def _run_epoch(self, epoch: int) -> None:
        losses = self.train_epoch(epoch)
        with torch.no_grad():
            self.method.on_epoch_end(_loader(self.train_ds, self.config))
        self.epoch = epoch + 1
        val: dict[str, float] = {}
        if self.dist.main and "val" in self.eval_sets:
            _, val = self.evaluate("val")
        record = {"epoch": self.epoch, "losses": losses, "val": val}
        self.history.append(record)
        self._call("on_epoch_end", record)
        barrier(self.dist)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Every batch of ``epoch`` (0-based) through :func:`train_step`; the epoch's mean
        losses. Raises Cancelled when a stop is requested (checked before every step)."""
        self.method.train()
        batches = _epoch_batches(self.method, self.train_ds, self.config, epoch, self.dist)
        loader = _loader(self.train_ds, self.config, batches, pin=self.device.type == "cuda")
        sync = (lambda: average_gradients(self.params, self.dist)) if self.dist.active else None
        self._call("on_epoch_start", epoch, len(batches))
        sums: dict[str, float] = {}
        for index, raw in enumerate(loader):
            if agree(self.dist.main and bool(self.stop()), self.dist):
                raise Cancelled
            batch = move_batch(raw, self.device, "train")
            _, losses = train_step(self.method, batch, self.optimizers, self.scaler, epoch,
                                   self.global_step, amp=self.amp, sync_gradients=sync)
            self.global_step += 1
            n_items = int(raw["y"].shape[0])
            self.clock.step(n_items)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            self._call("on_step_end", StepInfo(epoch, index, len(batches), losses, n_items))
        return {k: v / max(len(batches), 1) for k, v in sums.items()}

    def evaluate(self, split: str) -> tuple[SplitPredictions, dict[str, float]]:
        """A prediction pass over ``split`` and its metrics (the callbacks' added)."""
        pred = predict_split(self.method, _loader(self.eval_sets[split], self.config),
                             self.device, split, self.amp)
        metrics = classification_metrics(pred, self.ordinal, self.config.seed)
        self._call("on_evaluate", split, pred, metrics)
        return pred, metrics

    def end(self) -> dict[str, Any]:
        """Rank 0: the final evaluation of every output split, its outputs and the final
        metrics written; returns the final metrics."""
        final: dict[str, Any] = {"epochs_done": self.epoch, "best": self.best,
                                 "history": self.history, "scale": self.scale,
                                 "class_names": self.train_ds.class_names}
        if self.dist.main:
            for split in OUTPUT_SPLITS:
                if split in self.eval_sets:
                    pred, final[split] = self.evaluate(split)
                    self.run.write_outputs(split, *outputs_table(pred))
            self.run.write_metrics(final)
        return final


@contextmanager
def _warnings_as_notices(notices: list[str]) -> Iterator[None]:
    """The RuntimeWarnings of the block (what a method says about its training set: a class
    with no mass, …) appended to ``notices``, once each, so the run shows them with its other
    notices (events, terminal, Train page) rather than as a Python warning with a source line;
    other warnings pass on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            if str(w.message) not in notices:
                notices.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


_NO_SPLIT = {"val": "no validation metrics after each epoch",
             "test": "the run ends without test metrics (evaluate it on another dataset or "
                     "split: affectlab eval RUN --dataset DIR --split all)"}


def data_notices(train_ds, eval_sets: dict[str, Any]) -> list[str]:
    """What the user should know about the data a run trains on, one line each: the items each
    split left out and why (an unreadable clip, one shorter than a frame, no rating on the
    scale), and a val or test split with no items."""
    notes = []
    for split, ds in (("train", train_ds), *eval_sets.items()):
        for reason, n in ds.excluded_reasons.items():
            notes.append(f"{split}: {n} item(s) left out ({reason})")
    for split, consequence in _NO_SPLIT.items():
        if split in eval_sets and len(eval_sets[split]) == 0:
            notes.append(f"the dataset has no usable {split} items: {consequence}")
    return notes


def _use_amp(config: RunConfig, device: torch.device) -> bool:
    amp = device.type == "cuda" if config.amp is None else bool(config.amp)
    if amp and device.type != "cuda":
        logger.warning("amp=True is only used on CUDA; training in float32 on %s", device)
        amp = False
    return amp


def _check_compatible(method, modality: str, ordinal: bool, config: RunConfig) -> None:
    from affectlab.methods import incompatibility

    # the registry's rule, the one the app's form applies
    reason = incompatibility(config.method, modality, ordinal, config.scale)
    if reason is not None:
        raise ConfigError(reason)
    model_modality = getattr(method.model, "modality", modality)
    if model_modality != modality:
        raise ConfigError(f"model {config.model!r} is for {model_modality} data but dataset "
                          f"{config.dataset} is {modality}")
