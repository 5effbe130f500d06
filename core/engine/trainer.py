"""The training loop: dataset → model → method → epochs, with events, checkpoints and outputs.

A run directory holds (written by rank 0 only)::

    config.yaml              the RunConfig with method defaults filled in
    events.jsonl             start / step / epoch / checkpoint / end | error | cancelled
    checkpoints/last.pt      everything needed to resume (atomic write): method state (model
                             included), model_state (the bare network's), optimisers, RNG
                             states, history, and what rebuilding the method needs (info,
                             model/method names and params, class names, normalisers)
    checkpoints/best.pt      method/model state + rebuild info at the best validation UAR
    model.json               model/method names and params, class names, modality, scale,
                             speech normalisers (for load_run / predict)
    metrics.json             final val/test metrics, best epoch, per-epoch history
    outputs/test.parquet     per test and val item: predictions, uncertainty, latent, truth
    outputs/embeddings.npy   (n, D) embeddings, row-aligned with test.parquet

Determinism: the epoch's item order depends only on (seed, epoch) (DistributedSampler's
seeding), and a checkpoint stores the python / numpy / torch RNG states at the epoch boundary,
so a run resumed from epoch e ends with the same weights as one that never stopped (on CPU).

Distributed: under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised (gloo on CPU,
nccl on CUDA), the training items are sharded with DistributedSampler (method batch samplers:
whole batches dealt round-robin), and gradients are averaged over ranks after every backward
pass. Averaging is done on the method's parameters directly instead of wrapping the model in
DistributedDataParallel, because methods call parts of the model (DMUE's branches, LDLVA's
calibration MLP) outside ``forward``; the arithmetic is DDP's. ``batch_size`` is per process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from affectlab.engine.config import ConfigError, RunConfig, save_config
from affectlab.engine.device import place_on_device
from affectlab.engine.evaluate import SplitPredictions, compute_metrics, move_batch, predict_split
from affectlab.engine.events import EVENTS_FILE, EventWriter
from affectlab.engine.step import forward_and_read

logger = logging.getLogger(__name__)

__all__ = ["CANCEL_FILE", "RunResult", "build_train_info", "cancel_requested", "train"]

CANCEL_FILE = "cancel.request"
CHECKPOINT = Path("checkpoints") / "last.pt"
SELECT_METRIC = "uar"  # validation metric that picks checkpoints/best.pt
_STEP_EVENTS_PER_EPOCH = 20  # step events are thinned to about this many per epoch


@dataclass
class RunResult:
    """What :func:`train` returns. status ∈ finished | cancelled."""

    run_dir: Path
    status: str
    epochs_done: int
    metrics: dict[str, Any] = field(default_factory=dict)


class Cancelled(Exception):
    """Raised inside the loop when a cancel request is seen."""


def cancel_requested(run_dir: str | os.PathLike) -> bool:
    """True when ``<run>/cancel.request`` exists (written by :func:`affectlab.engine.jobs.cancel`)."""
    return (Path(run_dir) / CANCEL_FILE).exists()


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


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`_rng_state`'s output. The generators want CPU byte tensors: a checkpoint
    loaded with ``map_location="cuda"`` has moved them to the GPU."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:  # resumed on a machine with another number of GPUs: keep what matches
            for i, s in enumerate(cuda_states[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same directory, then rename: a crash mid-write leaves
    the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def build_train_info(train_ds, ordinal: bool):
    """TrainSetInfo of a training :class:`EmotionDataset`.

    aux: per-item (valence, arousal) mean ratings from the ``valence`` and ``activation``
    Likert scales when the dataset has both (an item missing one gets that scale's mean over
    the training set), else None.
    """
    from affectlab.labels import likert_means
    from affectlab.methods import TrainSetInfo
    from affectlab.scales import IntervalScale

    scales, ratings = train_ds.ds.schema.scales, train_ds.ds.ratings
    aux = None
    if all(isinstance(scales.get(s), IntervalScale) for s in ("valence", "activation")):
        cols = []
        for s in ("valence", "activation"):
            col = likert_means(ratings, train_ds.item_ids, s, scales[s])
            if np.isnan(col).all():
                cols = []
                break
            cols.append(np.where(np.isnan(col), np.nanmean(col), col))
        if cols:
            aux = torch.as_tensor(np.stack(cols, axis=1), dtype=torch.float32)
    return TrainSetInfo(n_items=len(train_ds), num_classes=train_ds.num_classes,
                        soft_labels=torch.as_tensor(train_ds.soft_labels, dtype=torch.float32),
                        labels=torch.as_tensor(train_ds.labels, dtype=torch.int64),
                        aux=aux, ordinal=ordinal)


def info_to_dict(info) -> dict[str, Any]:
    return {"n_items": info.n_items, "num_classes": info.num_classes,
            "soft_labels": info.soft_labels.cpu(), "labels": info.labels.cpu(),
            "aux": None if info.aux is None else info.aux.cpu(), "ordinal": info.ordinal}


def info_from_dict(state: dict[str, Any]):
    from affectlab.methods import TrainSetInfo

    return TrainSetInfo(**state)


def build_method(model_name: str, model_params: dict[str, Any], method_name: str,
                 method_params: dict[str, Any], info, pretrained: bool = False):
    """Model (with ``num_classes = info.num_classes``) wrapped in the named method."""
    from affectlab import methods, models

    params = dict(model_params)
    if "num_classes" in params and int(params["num_classes"]) != info.num_classes:
        raise ConfigError(f"model_params.num_classes={params['num_classes']} disagrees with the "
                          f"{info.num_classes} classes of the label scale; leave it out")
    params["num_classes"] = info.num_classes
    model = models.create(model_name, pretrained=pretrained, **params)
    return methods.create(method_name, model, info, **method_params), params


# --------------------------------------------------------------------------- distributed

@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(config: RunConfig) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(world=dist.get_world_size(), rank=dist.get_rank(), local_rank=local_rank)


def _broadcast_state(method, d: _Dist) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    for tensor in method.state_dict().values():
        if isinstance(tensor, torch.Tensor):
            dist.broadcast(tensor, src=0)


def _average_gradients(params: list[torch.nn.Parameter], d: _Dist) -> None:
    """All-reduce (mean) the gradients of ``params`` in one flat buffer. A parameter without a
    gradient on this rank contributes zeros; it keeps ``grad=None`` only if no rank has one, so
    every rank makes the same optimiser step."""
    if not params:
        return
    flats, has = [], []
    for p in params:
        flats.append(p.grad.reshape(-1) if p.grad is not None
                     else torch.zeros(p.numel(), device=p.device, dtype=p.dtype))
        has.append(1.0 if p.grad is not None else 0.0)
    flat = torch.cat(flats + [torch.tensor(has, device=params[0].device, dtype=flats[0].dtype)])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for p in params:
        n = p.numel()
        chunk = flat[offset:offset + n].view_as(p).to(p.dtype)
        offset += n
        if p.grad is not None:
            p.grad.copy_(chunk)
        else:
            p.grad = chunk.clone()
    for p, h in zip(params, flat[offset:].tolist(), strict=True):
        if h == 0.0:
            p.grad = None


# --------------------------------------------------------------------------- batches

def _epoch_batches(method, train_ds, config: RunConfig, epoch: int, d: _Dist) -> list[list[int]]:
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

def _outputs_table(preds: list[SplitPredictions]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per item of the given splits; list-valued columns for distributions."""
    frames, embs = [], []
    for p in preds:
        cols: dict[str, Any] = {
            "item_id": p.item_id, "split": p.split, "domain": p.domain,
            "label": p.label, "pred": p.probs.argmax(axis=1).astype(np.int64),
            "uncertainty": p.uncertainty,
            "probs": list(p.probs.astype(np.float32)),
            "soft_label": list(p.soft.astype(np.float32)),
            "latent": (list(p.latent.astype(np.float32)) if p.latent is not None
                       else [None] * len(p)),
        }
        for name, values in p.truth.items():
            arr = np.asarray(values)
            cols[name] = list(arr.astype(np.float32)) if arr.ndim == 2 else arr
        frames.append(pd.DataFrame(cols))
        embs.append(p.embedding.astype(np.float32))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    emb = np.concatenate(embs) if embs else np.zeros((0, 0), dtype=np.float32)
    return table, emb


# --------------------------------------------------------------------------- the loop

def train(config: RunConfig, progress: bool = True, resume: bool = False,
          should_stop: Callable[[], bool] | None = None, clear_cancel: bool = True) -> RunResult:
    """Train ``config`` to completion (or until cancelled) and write the run directory.

    progress:     tqdm bar in the foreground
    resume:       continue from ``<run>/checkpoints/last.pt`` (the config may raise ``epochs``;
                  dataset, model, method, their params, scale and seed must match)
    should_stop:  polled every step; default: a cancel request file in the run directory.
                  A stop ends the run with a ``cancelled`` event; the last checkpoint is kept.
    clear_cancel: remove a stale cancel request first (the background worker passes False:
                  its launcher already did, and a cancel may arrive before the worker starts)
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    d = _init_distributed(config)
    run_dir = config.run_dir()
    try:
        return _train(config, run_dir, d, progress and d.main, resume, should_stop, clear_cancel)
    finally:
        if d.active and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: RunConfig, run_dir: Path, d: _Dist, progress: bool, resume: bool,
           should_stop: Callable[[], bool] | None, clear_cancel: bool) -> RunResult:
    from affectlab.data.dataset import EmotionDataset

    ckpt_path = run_dir / CHECKPOINT
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if clear_cancel:
            (run_dir / CANCEL_FILE).unlink(missing_ok=True)
        if not resume and (ckpt_path.exists() or (run_dir / EVENTS_FILE).exists()):
            raise FileExistsError(f"run directory {run_dir} already holds a run; pass "
                                  "resume=True (--resume) to continue it or choose another out")
        if resume and not ckpt_path.exists():
            raise FileNotFoundError(f"cannot resume: {ckpt_path} does not exist")
    events = EventWriter(run_dir, enabled=d.main)
    stop = should_stop if should_stop is not None else (lambda: cancel_requested(run_dir))
    epoch_done = 0
    try:
        _seed_everything(config.seed)
        device = _resolve_device(config, d.local_rank)
        amp = device.type == "cuda" if config.amp is None else bool(config.amp)
        if amp and device.type != "cuda":
            logger.warning("amp=True is only used on CUDA; training in float32 on %s", device)
            amp = False

        from affectlab.data.contract import load_dataset

        data = load_dataset(config.dataset)
        meta = data.meta
        scale = _label_scale(config, meta)
        if scale not in meta.get("scales", {}):
            raise ConfigError(f"scale {scale!r} is not a scale of dataset {data.name!r} "
                              f"(known: {', '.join(meta.get('scales', {}))})")
        ordinal = _is_ordinal(scale, meta)
        train_ds = EmotionDataset(data, "train", scale=scale)
        if len(train_ds) == 0:
            raise ValueError(f"dataset {data.name!r} has no rated training items on scale "
                             f"{scale!r}")
        norms = getattr(train_ds, "normalizers", None)
        eval_sets = {s: EmotionDataset(data, s, scale=scale) for s in ("val", "test")}
        eval_sets = {s: ds for s, ds in eval_sets.items() if len(ds) > 0}

        info = build_train_info(train_ds, ordinal)
        method, model_params = build_method(config.model, config.model_params, config.method,
                                            config.method_params, info, config.pretrained)
        _check_compatible(method, data.modality, ordinal, config)
        if hasattr(method, "attach_dataset"):  # LDLVA's exact mode re-reads neighbours' inputs
            method.attach_dataset(train_ds)
        place_on_device(method, device)
        optimizers = method.optimizers(config.lr, config.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        if d.active:
            _broadcast_state(method, d)
        params = [p for p in method.parameters() if p.requires_grad]

        history: list[dict[str, Any]] = []
        best: dict[str, Any] = {"epoch": None, "metric": SELECT_METRIC, "value": None}
        global_step = 0
        start_epoch = 0
        if resume:
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
            _check_resume(ckpt, config)
            method.load_state_dict(ckpt["method_state"])
            for opt, state in zip(optimizers, ckpt["optimizers"], strict=True):
                opt.load_state_dict(state)
            scaler.load_state_dict(ckpt["scaler"])
            start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
            history, best = list(ckpt["history"]), dict(ckpt["best"])
            _set_rng_state(ckpt["rng"])
        epoch_done = start_epoch

        model_info = {"model": config.model, "model_params": model_params,
                      "method": config.method, "method_params": dict(method.params),
                      "class_names": train_ds.class_names, "modality": data.modality,
                      "scale": scale, "ordinal": ordinal, "dataset": str(config.dataset),
                      "normalizers": ({str(k): v.to_dict() for k, v in norms.items()}
                                      if norms else None)}
        if d.main:
            save_config(config, run_dir / "config.yaml")
            _atomic_write_text(run_dir / "model.json", json.dumps(model_info, indent=2))

        steps_per_epoch = len(_epoch_batches(method, train_ds, config, start_epoch, d))
        events.emit("start", epochs=config.epochs, start_epoch=start_epoch,
                    steps_per_epoch=steps_per_epoch, n_train=len(train_ds),
                    n_val=len(eval_sets.get("val", ())), device=str(device), amp=amp,
                    world_size=d.world, pid=os.getpid())
        t_start, samples_seen, steps_run = time.time(), 0, 0
        total_steps = steps_per_epoch * (config.epochs - start_epoch)
        pin = device.type == "cuda"

        for epoch in range(start_epoch, config.epochs):
            method.train()
            batches = _epoch_batches(method, train_ds, config, epoch, d)
            loader = _loader(train_ds, config, batches, pin)
            sums: dict[str, float] = {}
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}",
                           leave=False, dynamic_ncols=True)
            every = max(1, len(batches) // _STEP_EVENTS_PER_EPOCH)
            for step, raw in enumerate(loader):
                if _stop_now(stop, d):
                    raise Cancelled
                batch = move_batch(raw, device, "train")
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                result, losses = forward_and_read(method, batch, epoch, global_step, amp=amp)
                scaler.scale(result.loss).backward()
                if d.active:
                    _average_gradients(params, d)
                for opt in optimizers:
                    scaler.step(opt)
                scaler.update()
                global_step += 1
                steps_run += 1
                n_batch = int(raw["y"].shape[0])
                samples_seen += n_batch
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                elapsed = max(time.time() - t_start, 1e-9)
                eta = elapsed / steps_run * (total_steps - steps_run)
                if bar is not None:
                    bar.set_postfix(loss=f"{losses['loss']:.4f}")
                    bar.update(1)
                if (step + 1) % every == 0 or step + 1 == len(batches):
                    events.emit("step", epoch=epoch + 1, step=step + 1, global_step=global_step,
                                losses=losses, samples_per_s=samples_seen / elapsed, eta_s=eta)
            if bar is not None:
                bar.close()

            hook = getattr(method, "on_epoch_end", None)
            if callable(hook):
                with torch.no_grad():
                    hook(_loader(train_ds, config))
            epoch_done = epoch + 1
            val_metrics: dict[str, float] = {}
            if d.main and "val" in eval_sets:
                val_pred = predict_split(method, _loader(eval_sets["val"], config), device,
                                         "val", amp)
                val_metrics = compute_metrics(val_pred, ordinal, config.seed)
            mean_losses = {k: v / max(len(batches), 1) for k, v in sums.items()}
            history.append({"epoch": epoch_done, "losses": mean_losses, "val": val_metrics})
            elapsed = max(time.time() - t_start, 1e-9)
            events.emit("epoch", epoch=epoch_done, global_step=global_step, losses=mean_losses,
                        metrics=val_metrics, samples_per_s=samples_seen / elapsed,
                        eta_s=elapsed / max(steps_run, 1) * (total_steps - steps_run))
            if d.main:
                value = val_metrics.get(SELECT_METRIC)
                improved = value is not None and (best["value"] is None or value > best["value"])
                if improved or ("val" not in eval_sets):
                    best = {"epoch": epoch_done, "metric": SELECT_METRIC, "value": value}
                    _save_weights(run_dir / "checkpoints" / "best.pt", method, info,
                                  model_info, epoch_done)
                if epoch_done % config.checkpoint_every == 0 or epoch_done == config.epochs:
                    _save_checkpoint(ckpt_path, method, optimizers, scaler, epoch_done,
                                     global_step, history, best, config, info, model_info)
                    events.emit("checkpoint", epoch=epoch_done, path=str(ckpt_path))
            if d.active:
                dist.barrier()

        final: dict[str, Any] = {"epochs_done": epoch_done, "best": best, "history": history,
                                 "scale": scale, "class_names": train_ds.class_names}
        if d.main:
            preds = []
            for split in ("test", "val"):
                if split in eval_sets:
                    pred = predict_split(method, _loader(eval_sets[split], config), device,
                                         split, amp)
                    final[split] = compute_metrics(pred, ordinal, config.seed)
                    preds.append(pred)
            table, emb = _outputs_table(preds)
            out_dir = run_dir / "outputs"
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = out_dir / ".test.parquet.tmp"
            table.to_parquet(tmp, index=False)
            os.replace(tmp, out_dir / "test.parquet")
            np.save(out_dir / "embeddings.npy", emb)
            _atomic_write_text(run_dir / "metrics.json",
                               json.dumps(_json_safe(final), indent=2))
            events.emit("end", epoch=epoch_done,
                        metrics={"test": final.get("test", {}), "val": final.get("val", {})})
        return RunResult(run_dir, "finished", epoch_done, final)
    except Cancelled:
        events.emit("cancelled", epoch=epoch_done)
        return RunResult(run_dir, "cancelled", epoch_done, {})
    except KeyboardInterrupt:
        events.emit("cancelled", epoch=epoch_done, message="interrupted")
        raise
    except BaseException as exc:
        events.emit("error", epoch=epoch_done, message=f"{type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc())
        raise


def _stop_now(stop: Callable[[], bool], d: _Dist) -> bool:
    """Rank 0 decides (every rank must leave the loop at the same step)."""
    flag = bool(stop()) if d.main else False
    if d.active:
        t = torch.tensor([1.0 if flag else 0.0])
        dist.broadcast(t, src=0)
        flag = bool(t.item())
    return flag


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


_RESUME_KEYS = ("dataset", "model", "model_params", "method", "method_params", "scale", "seed",
                "batch_size")


def _check_resume(ckpt: dict[str, Any], config: RunConfig) -> None:
    saved = ckpt.get("config", {})
    now = config.to_dict()
    diff = [k for k in _RESUME_KEYS if saved.get(k) != now.get(k)]
    if diff:
        raise ConfigError(f"cannot resume: {', '.join(diff)} differ(s) from the checkpoint's "
                          f"config ({', '.join(f'{k}={saved.get(k)!r}' for k in diff)})")


def _weights_state(method, info, model_info: dict[str, Any], epoch: int) -> dict[str, Any]:
    """Weights and what rebuilding the method needs (see affectlab.engine.runs.load_method);
    ``model_state`` is the bare network's state dict for readers that want only the model."""
    return {"format": 1, "epoch": epoch, "method_state": method.state_dict(),
            "model_state": method.model.state_dict(), "info": info_to_dict(info), **model_info}


def _save_checkpoint(path: Path, method, optimizers, scaler, epoch: int, global_step: int,
                     history, best, config: RunConfig, info, model_info: dict[str, Any]) -> None:
    _atomic_torch_save({**_weights_state(method, info, model_info, epoch),
                        "global_step": global_step,
                        "optimizers": [o.state_dict() for o in optimizers],
                        "scaler": scaler.state_dict(), "rng": _rng_state(),
                        "history": history, "best": best, "config": config.to_dict()}, path)


def _save_weights(path: Path, method, info, model_info: dict[str, Any], epoch: int) -> None:
    _atomic_torch_save(_weights_state(method, info, model_info, epoch), path)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value
