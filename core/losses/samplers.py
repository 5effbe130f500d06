"""Class-balanced batches for the SGM loss (seed 002 §3.1: batch = n items × c classes)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from affectlab.validation import Interval, as_float_array, check_scalar


def _hard_classes(labels) -> np.ndarray:
    """(N,) integer classes from (N,) integer labels or the argmax of (N, K) soft labels."""
    arr = np.asarray(labels)
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            as_float_array(arr, "labels", ndim=1)
            if not np.all(np.mod(arr, 1) == 0):
                raise ValueError("labels given as a 1-D array must be integer class indices")
        if arr.size and arr.min() < 0:
            raise ValueError(f"labels must be class indices ≥ 0, got min {arr.min()}")
        return arr.astype(np.int64)
    y = as_float_array(arr, "labels", ndim=(1, 2))
    return y.argmax(axis=1).astype(np.int64)


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Batches of ``n_per_class`` items from each of ``classes_per_batch`` classes.

    ``labels``: (N,) integer classes or (N, K) soft labels (an item's class is its argmax).
    ``classes_per_batch``: default all classes that have items; fewer means a random subset of
    classes per batch. ``n_batches``: per epoch; default N // batch size (at least 1), so an
    epoch visits about N items. Within a class, items are drawn without replacement from a
    shuffled pool that is refilled when used up (a batch never repeats an item unless its class
    has fewer than ``n_per_class`` items). ``seed`` and ``set_epoch(e)`` fix the draw (same
    (seed, epoch) → same batches). Use as ``DataLoader(ds, batch_sampler=...)``.
    """

    def __init__(self, labels, n_per_class: int = 30, classes_per_batch: int | None = None,
                 n_batches: int | None = None, seed: int = 0):
        super().__init__()
        self.classes_of = _hard_classes(labels)
        if self.classes_of.size == 0:
            raise ValueError("labels must hold at least one item")
        self.n_per_class = check_scalar(n_per_class, "n_per_class", int, interval=Interval(1))
        self.classes = np.unique(self.classes_of)
        n_cls = self.classes.size
        if classes_per_batch is None:
            classes_per_batch = n_cls
        # bounded by the classes that have items
        self.classes_per_batch = check_scalar(classes_per_batch, "classes_per_batch", int,
                                              interval=Interval(1, n_cls))
        self.batch_size = self.n_per_class * self.classes_per_batch
        if n_batches is None:
            n_batches = max(1, self.classes_of.size // self.batch_size)
        self.n_batches = check_scalar(n_batches, "n_batches", int, interval=Interval(1))
        self.members = {int(c): np.flatnonzero(self.classes_of == c) for c in self.classes}
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        pools = {c: rng.permutation(m) for c, m in self.members.items()}
        pos = dict.fromkeys(pools, 0)

        def take(c: int) -> np.ndarray:
            out = []
            need = self.n_per_class
            while need:
                if pos[c] == pools[c].size:  # pool used up: reshuffle and start again,
                    fresh = rng.permutation(self.members[c])  # this batch's items last
                    taken = np.isin(fresh, np.concatenate(out)) if out else np.zeros(0, bool)
                    pools[c] = np.concatenate([fresh[~taken], fresh[taken]]) if out else fresh
                    pos[c] = 0
                got = pools[c][pos[c]:pos[c] + need]
                pos[c] += got.size
                need -= got.size
                out.append(got)
            return np.concatenate(out)

        all_classes = [int(c) for c in self.classes]
        for _ in range(self.n_batches):
            if self.classes_per_batch < len(all_classes):
                chosen = rng.choice(all_classes, self.classes_per_batch, replace=False).tolist()
            else:
                chosen = all_classes
            yield np.concatenate([take(c) for c in chosen]).tolist()
