"""``affectlab bench``: the cost of one training step of every registered method, relative to
``ce`` on the same model and the same batch (issue 4).

One step = zero_grad → ``training_step`` → backward → every optimiser's step, exactly as the
trainer does it. Each method is built around a fresh copy of the same network (same seed) and
timed on a synthetic in-memory training set: ``warmup`` untimed rounds, then ``steps`` timed
rounds (CUDA is synchronised around each step). A round is one step of the method and one of a
``ce`` built on the same network and batch, back to back, their order reversed every other
round; ``step_ms`` is the median step time and ``ratio`` the median over rounds of the method's
step time over ce's in the same round, so load from other processes on a shared machine hits
both sides of every ratio alike and a round that a burst of load hit unevenly is outvoted. A
method with its own batch sampler (f-SPL triplets, SGM class-balanced batches) is timed on the
first batch its sampler gives.

Set-up choices: the synthetic set is marked ordinal so the ordinal-only EMD² methods can be
timed (only their arithmetic matters here); LDLVA's memory bank is filled before timing (the
steady state after the first epoch); "ldlva (exact)" runs the authors' 8 extra forward passes
per item, fetching the neighbours' inputs from the in-memory set. Where DMUE's auxiliary
branches default to bfloat16 (a CPU that computes it natively), "dmue (float32 branches)" is
timed as well, so the table shows what the default saves, and "dmue (stacked branches)"
always (its branches in the same kernels: the layout for GPUs, where launches set the pace).
Methods the registry cannot build for the modality (DMUE needs the face ResNet) are listed
with a note instead of a time.

``ops`` counts the operators one step's forward and backward dispatch, as PyTorch's dispatcher
sees them (views, allocations and detaches left out; the losses' value checks skipped and the
optimisers left out, as on a GPU): there nearly each is a kernel launch, so where small kernels
make the step launch-bound this count, not the CPU time, predicts the GPU's ratio. It is
counted on one extra forward and backward after the timed steps.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from affectlab.engine.device import place_on_device
from affectlab.engine.evaluate import move_batch
from affectlab.engine.step import train_step
from affectlab.losses import skip_value_checks

__all__ = ["TARGETS", "check_method_names", "main", "run_bench"]

# (method-name predicate, bound, description); ratios are step time / ce step time
TARGETS: list[tuple[Callable[[str], bool], float, str]] = [
    (lambda n: n.startswith("ce+fspl-"), 1.15, "≤ 1.15×"),
    (lambda n: n in ("emd2", "ce+emd2"), 1.05, "≤ 1.05×"),
    (lambda n: n == "sgm", 1.15, "≤ 1.15×"),
    (lambda n: n == "ldlva", 1.6, "≤ 1.6×"),
    (lambda n: n == "dmue", 2.0, "≤ 2.0×"),
]
EXACT_OVER_BANK = 4.0  # "ldlva (exact)" must cost at least this many times "ldlva" (bank)
_MODELS = {"face": ("resnet18", {}), "speech": ("convpool", {})}


class _Items:
    """Indexable synthetic training items (what EmotionDataset returns, minus media)."""

    def __init__(self, x: torch.Tensor, soft: torch.Tensor, labels: torch.Tensor,
                 lengths: torch.Tensor | None) -> None:
        self.x, self.soft, self.labels, self.lengths = x, soft, labels, lengths

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.soft[i], "label": int(self.labels[i]), "index": i}

    def batch(self, idx, device: torch.device) -> dict[str, Any]:
        """A training batch on ``device``, moved and laid out as the trainer moves its own."""
        idx = torch.as_tensor(list(idx), dtype=torch.long)
        out = {"x": self.x[idx], "y": self.soft[idx], "label": self.labels[idx], "index": idx}
        if self.lengths is not None:
            out["lengths"] = self.lengths[idx]
        return move_batch(out, device, "train")


def _synthetic(modality: str, n: int, num_classes: int, seed: int):
    """(items, TrainSetInfo): random inputs, Dirichlet soft labels, valence–arousal aux."""
    from affectlab.methods import TrainSetInfo

    g = torch.Generator().manual_seed(seed)
    if modality == "face":
        x, lengths = torch.rand(n, 1, 64, 64, generator=g), None
    else:
        frames = 200
        x = torch.randn(n, frames, 40, generator=g)
        lengths = torch.randint(frames // 2, frames + 1, (n,), generator=g)
    rng = np.random.default_rng(seed)
    soft = torch.as_tensor(rng.dirichlet(np.full(num_classes, 0.5), size=n), dtype=torch.float32)
    labels = soft.argmax(1)
    aux = torch.rand(n, 2, generator=g) * 4 + 1
    info = TrainSetInfo(n_items=n, num_classes=num_classes, soft_labels=soft, labels=labels,
                        aux=aux, ordinal=True)
    return _Items(x, soft, labels, lengths), info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Stepper:
    """One method's full training step (the trainer's :func:`train_step`), with the trainer's
    mixed precision (float16 autocast and a gradient scaler) when ``amp``."""

    def __init__(self, method, batch: dict[str, Any], amp: bool = False) -> None:
        self.method, self.batch, self.amp = method, batch, amp
        self.device_type = batch["x"].device.type
        self.opts = method.optimizers(1e-3, 0.0)
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=amp)
        self.i = 0
        method.train()

    def __call__(self) -> None:
        train_step(self.method, self.batch, self.opts, self.scaler, 0, self.i, amp=self.amp)
        self.i += 1


class _OpCounter(TorchDispatchMode):
    """Counts the operators dispatched inside the block that compute (views, allocations and
    detaches excluded: they launch no kernel)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__
        if not (func.is_view or name.startswith(("empty", "detach", "alias", "lift_fresh"))):
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_step_ops(stepper: _Stepper) -> int:
    """Computing operators dispatched by the forward and backward of one more step of
    ``stepper``, as on a GPU: with the losses' value checks skipped, as the trainer skips them
    on CUDA (the optimisers are left out: on a GPU they run as a few multi-tensor kernels)."""
    for opt in stepper.opts:
        opt.zero_grad(set_to_none=True)
    device_type = stepper.device_type
    with _OpCounter() as counter:
        with torch.autocast(device_type=device_type, dtype=torch.float16, enabled=stepper.amp), \
                skip_value_checks(True):
            result = stepper.method.training_step(stepper.batch, 0, stepper.i)
        result.loss.backward()
    return counter.count


def _time_interleaved(steppers: list[_Stepper], steps: int, warmup: int,
                      device: torch.device) -> list[list[float]]:
    """Seconds of each timed step of each stepper (``steps`` per stepper, after ``warmup``).

    Each round takes one step of every stepper, the order reversed every other round (ABBA…),
    so a burst of load from other processes hits neighbouring steps alike and no stepper is
    always first."""
    times: list[list[float]] = [[] for _ in steppers]
    for i in range(warmup + steps):
        order = range(len(steppers)) if i % 2 == 0 else reversed(range(len(steppers)))
        for k in order:
            _sync(device)
            t0 = time.perf_counter()
            steppers[k]()
            _sync(device)
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    return times


def _paired_ratio(times: list[float], reference: list[float]) -> float:
    """Median over rounds of a step's time over the reference's step in the same round: steps
    taken back to back share the machine's load, so their ratio cancels slow drifts, and the
    median drops the rounds that a burst of load hit unevenly."""
    return statistics.median(a / b for a, b in zip(times, reference, strict=True))


def _dmue_branches_in_bfloat16(device: torch.device) -> bool:
    """Whether DMUE's default branch precision is bfloat16 on ``device`` (then the bench also
    times float32 branches, for comparison)."""
    from affectlab.methods.dmue import branch_dtype

    return branch_dtype("auto", device) == torch.bfloat16


def _target(name: str) -> tuple[float | None, str]:
    for pred, bound, text in TARGETS:
        if pred(name):
            return bound, text
    return None, ""


@dataclass
class _Variant:
    """A second configuration of a method timed beside it: its row's name, its stepper, its
    note from (time over the method's, ops over the method's), its target and verdict."""

    name: str
    stepper: _Stepper
    note: Callable[[float, float], str]
    target: str = "-"
    meets: Callable[[float], bool | None] = lambda over: None


def _variants(name: str, method, build, items: _Items, batch: dict[str, Any], amp: bool,
              dev: torch.device, batch_size: int) -> list[_Variant]:
    """LDLVA's exact neighbour passes; DMUE's float32 branches (where bfloat16 is the default)
    and its stacked layout."""
    if name == "ldlva":
        n_items = len(items)
        method.fill_bank(items.batch(range(s, min(s + batch_size, n_items)), dev)
                         for s in range(0, n_items, batch_size))
        exact = build("ldlva", neighbour_mode="exact")
        exact.attach_dataset(items)
        return [_Variant("ldlva (exact)", _Stepper(exact, batch, amp),
                         lambda over, _: f"{over:.2f}× ldlva (bank)",
                         f"≥ {EXACT_OVER_BANK:g}× ldlva (bank)",
                         lambda over: bool(over >= EXACT_OVER_BANK))]
    if name != "dmue":
        return []
    variants = []
    if _dmue_branches_in_bfloat16(dev):
        variants.append(_Variant(
            "dmue (float32 branches)", _Stepper(build("dmue", branch_precision="float32"), batch, amp),
            lambda over, _: f"{over:.2f}× dmue; the default runs the branches in bfloat16 here"))
    variants.append(_Variant(
        "dmue (stacked branches)", _Stepper(build("dmue", branch_layout="stacked"), batch, amp),
        lambda over, ops: f"{over:.2f}× dmue, {ops:.2f}× its ops; branch_layout=stacked (for GPUs)"))
    return variants


def check_method_names(names: list[str]) -> None:
    """ValueError naming the unknown ones (and the known) when ``names`` are not all registered
    methods."""
    from affectlab import methods

    unknown = sorted(set(names) - set(methods.names()))
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: "
                         f"{', '.join(methods.names())}")


def run_bench(modality: str = "face", steps: int = 10, batch_size: int = 32, warmup: int = 3,
              device: str = "auto", num_classes: int = 7, seed: int = 0,
              methods_filter: list[str] | None = None,
              model_params: dict[str, Any] | None = None,
              threads: int | None = None, amp: bool | None = None) -> pd.DataFrame:
    """Time one training step of every registered method against ``ce``.

    Returns one row per method (plus ``ldlva (exact)``) with columns: ``method``, ``items``
    (batch items per step), ``step_ms`` (median), ``samples_per_s``, ``ratio`` (median over
    rounds of step time / ce's step time on the same batch in the same round), ``target``
    (text), ``meets`` (bool or None), ``note``, ``ops`` (operators one step dispatches).
    ``methods_filter`` restricts the run to those names (``ce`` is always timed; an unknown
    name is a ValueError before anything is timed); ``model_params`` override the network's defaults (e.g. a
    narrower ResNet for a quick run); ``threads`` sets torch's intra-op threads for the run
    (restored afterwards; one thread gives the steadiest ratios on a shared machine); ``amp``
    mixed precision as the trainer has it (None: on exactly when the device is CUDA).
    """
    if modality not in _MODELS:
        raise ValueError(f"modality must be one of {sorted(_MODELS)}, got {modality!r}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    if methods_filter is not None:
        check_method_names(methods_filter)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(modality, steps, batch_size, warmup, device, num_classes, seed,
                    methods_filter, model_params, amp)
    finally:
        torch.set_num_threads(previous_threads)


def _run(modality: str, steps: int, batch_size: int, warmup: int, device: str,
         num_classes: int, seed: int, methods_filter: list[str] | None,
         model_params: dict[str, Any] | None, amp: bool | None) -> pd.DataFrame:
    """run_bench's body, its arguments validated."""
    from affectlab import methods, models

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                       else ("cpu" if device == "auto" else device))
    amp = dev.type == "cuda" if amp is None else bool(amp and dev.type == "cuda")
    model_name, defaults = _MODELS[modality]
    model_params = {**defaults, **(model_params or {})}
    n_items = max(4 * batch_size, 8 * num_classes, 64)
    items, info = _synthetic(modality, n_items, num_classes, seed)
    torch.manual_seed(seed)
    base_model = models.create(model_name, num_classes=num_classes, **model_params)
    plain = list(range(batch_size))
    rows: list[dict[str, Any]] = []

    def build(name: str, **params):
        # on the device and in the memory layout the trainer gives it
        return place_on_device(methods.create(name, copy.deepcopy(base_model), info, **params),
                               dev)

    def row(name: str, idx: list[int] | None, seconds: float | None, ratio: float | None,
            note: str = "", target: str | None = None, meets: bool | None = None,
            ops: int | None = None) -> None:
        bound, text = _target(name)
        if meets is None and ratio is not None and bound is not None:
            meets = bool(ratio <= bound)
        rows.append({"method": name, "items": None if idx is None else len(idx),
                     "step_ms": None if seconds is None else 1000 * seconds,
                     "samples_per_s": None if seconds is None else len(idx) / seconds,
                     "ratio": ratio, "ops": ops, "target": text if target is None else target,
                     "meets": meets, "note": note})

    names = [s.name for s in methods.available()]
    if methods_filter is not None:
        names = [n for n in names if n in methods_filter or n == "ce"]
    for name in names:
        try:
            method = build(name)
        except (ValueError, TypeError) as exc:
            row(name, None, None, None, f"skipped: {exc}")
            continue
        if modality not in tuple(method.modalities):
            row(name, None, None, None, f"skipped: supports {tuple(method.modalities)} only")
            continue
        sampled = method.batch_sampler(batch_size, 0, seed)
        idx = [int(i) for i in next(iter(sampled))] if sampled is not None else plain
        batch = items.batch(idx, dev)
        note = "own batch sampler; ce timed on the same batch" if sampled is not None else ""
        steppers = [_Stepper(build("ce"), batch, amp), _Stepper(method, batch, amp)]
        variants = _variants(name, method, build, items, batch, amp, dev, batch_size)
        steppers += [v.stepper for v in variants]
        times = _time_interleaved(steppers, steps, warmup, dev)
        ops = [count_step_ops(s) for s in steppers]
        med = [statistics.median(t) for t in times]
        row(name, idx, med[1], _paired_ratio(times[1], times[0]), note, ops=ops[1])
        for k, v in enumerate(variants, start=2):
            over = _paired_ratio(times[k], times[1])
            row(v.name, idx, med[k], _paired_ratio(times[k], times[0]), v.note(over, ops[k] / ops[1]),
                target=v.target, meets=v.meets(over), ops=ops[k])
    frame = pd.DataFrame(rows, columns=["method", "items", "step_ms", "samples_per_s", "ratio",
                                        "ops", "target", "meets", "note"])
    frame["ops"] = frame["ops"].astype("Int64")
    frame.attrs.update({"modality": modality, "device": str(dev), "model": model_name,
                        "batch_size": batch_size, "steps": steps, "warmup": warmup,
                        "threads": torch.get_num_threads(), "amp": amp})
    return frame


def format_table(frame: pd.DataFrame) -> str:
    """The bench table as text, with a header line naming device, model and batch."""
    a = frame.attrs
    head = (f"bench: modality={a.get('modality')} model={a.get('model')} "
            f"device={a.get('device')} batch_size={a.get('batch_size')} "
            f"threads={a.get('threads')} amp={a.get('amp')} steps={a.get('steps')} (medians, after "
            f"{a.get('warmup')} warm-up; ratio = median of per-round ratios to ce)")
    body = frame.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.2f}")
    return f"{head}\n{body}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time one training step of every method "
                                                 "relative to ce.")
    parser.add_argument("--modality", default="face", choices=sorted(_MODELS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", nargs="*", default=None, help="only these (ce always)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 gives the steadiest ratios)")
    args = parser.parse_args(argv)
    frame = run_bench(args.modality, args.steps, args.batch_size, args.warmup, args.device,
                      methods_filter=args.methods, threads=args.threads)
    print(format_table(frame))


if __name__ == "__main__":
    main()
