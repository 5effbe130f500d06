"""Balanced triplet sampling for f-SPL (seed 000 §3.3, SPEC §2).

The sampler is the "miner" half of the pytorch-metric-learning split: it picks triplets from
the soft labels; :class:`affectlab.losses.fspl.FSPLLoss` only scores the triplets it is given.

For each anchor a: label similarities C(a, j) = 2 − 2·TV to all other items (or to a random
candidate subset of ``max_candidates`` items when the set is larger), keys round(C, 2); a key
c is valid when 2 − c is also a key; draw a valid key uniformly, then one item with key c and
one with key 2 − c. The item with the larger C is the "similar" one. Every triplet then has
C_s + C_d = 2 up to rounding of the keys (|C_s + C_d − 2| ≤ 10^−decimals), so every batch of
triplets, however shuffled or cut, satisfies Σ_pairs (C_p − 1) = 0 up to rounding.

Anchors without a valid key pair (e.g. an extreme label whose opposite no candidate has):
``on_unbalanced='nearest'`` (default) keeps the anchor, so every item is still an anchor once
per epoch, and uses the candidate pair that minimises |C_j + C_k − 2|; those triplets are
flagged in ``Triplets.fallback`` and are the only ones whose balance may exceed the rounding
bound. ``on_unbalanced='skip'`` drops such anchors for the epoch and counts them in
``Triplets.n_skipped``, keeping the exact balance guarantee.

Two vectorised paths (numpy, chunks of anchors; no per-anchor Python dictionary):
- exact (labels take at most ``max_unique`` distinct values, e.g. Likert means): similarities
  are computed once between distinct labels, so every anchor is compared with *every* other
  item at O(U) cost per anchor (U distinct labels); items are then drawn uniformly among all
  items with the chosen key by rank, never the anchor itself.
- candidates (many distinct labels): each anchor is compared with ``max_candidates`` random
  other items; the {key: [indices]} dictionary becomes a boolean (anchors × keys) presence
  table and "pick one item with key c" an argmax of random scores masked to that key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from affectlab.validation import Interval, as_float_array, check_distribution, check_scalar

# keys round C to at most this many decimals (then 2·10⁴ + 1 distinct keys)
MAX_DECIMALS = 4
_CHUNK_ELEMS = 2_000_000  # floats per temporary array (≈16 MB), bounds memory per chunk


@dataclass(frozen=True)
class Triplets:
    """An epoch's (or a batch's) triplets as parallel arrays of length n.

    ``anchor``, ``similar``, ``dissimilar``: (n,) int64 item indices. ``c_similar``,
    ``c_dissimilar``: (n,) float64 exact (unrounded) label similarities to the anchor.
    ``fallback``: (n,) bool, triplets of anchors without a valid key pair (module note).
    ``n_skipped``: anchors dropped under ``on_unbalanced='skip'``.
    """

    anchor: np.ndarray
    similar: np.ndarray
    dissimilar: np.ndarray
    c_similar: np.ndarray
    c_dissimilar: np.ndarray
    fallback: np.ndarray
    n_skipped: int = 0

    def __len__(self) -> int:
        return int(self.anchor.shape[0])

    @property
    def n_fallback(self) -> int:
        return int(self.fallback.sum())

    def __getitem__(self, idx) -> Triplets:
        """Rows ``idx`` (a slice or index array) as a new Triplets (n_skipped not carried)."""
        return Triplets(self.anchor[idx], self.similar[idx], self.dissimilar[idx],
                        self.c_similar[idx], self.c_dissimilar[idx], self.fallback[idx])

    def balance(self) -> float:
        """Σ over the 2n pairs of (C_p − 1): 0 for a balanced set (paper §3.1)."""
        return float(np.sum(self.c_similar - 1.0) + np.sum(self.c_dissimilar - 1.0))


def _similarity_rows(y: np.ndarray, anchors: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """C = 2 − Σ_k |y_a − y_j| for each anchor row against its candidates: (m, M)."""
    diff = np.abs(y[anchors][:, None, :] - y[cand])
    return np.clip(2.0 - diff.sum(axis=-1), 0.0, 2.0)


class BalancedTripletSampler:
    """Balanced triplets for f-SPL from soft labels, new ones each epoch.

    ``labels``: (N, K) soft labels (rows sum to 1), N ≥ 2. ``max_unique``: when the labels
    have at most this many distinct rows, the exact path compares each anchor with all other
    items (module note). ``max_candidates``: otherwise anchors are compared with all other
    items when N − 1 ≤ max_candidates, else with that many random other items (drawn with
    replacement, fresh each epoch). ``decimals``: rounding of the keys
    (2 in the paper). ``seed``: epoch e uses the generator seeded by (seed, e), so the same
    (seed, epoch) gives the same triplets. ``on_unbalanced``: 'nearest' or 'skip' (module note).

    ``triplets(epoch)`` returns all of an epoch's triplets in random order, each item an anchor
    exactly once (unless skipped); ``batches(batch_size, epoch)`` cuts them into batches.
    Iterating yields (anchor, similar, dissimilar) int tuples for ``set_epoch``'s epoch, so the
    object can drive a torch DataLoader over a triplet dataset.
    """

    def __init__(self, labels, *, max_candidates: int = 256, max_unique: int = 1024,
                 decimals: int = 2, seed: int = 0, on_unbalanced: str = "nearest"):
        y = as_float_array(labels, "labels", ndim=2)
        check_distribution(y, "labels")
        if y.shape[0] < 2:
            raise ValueError(f"labels must hold at least 2 items to form pairs, got {y.shape[0]}")
        self.labels = y
        self.n = y.shape[0]
        self.max_candidates = check_scalar(max_candidates, "max_candidates", int,
                                           interval=Interval(1))
        self.decimals = check_scalar(decimals, "decimals", int, interval=Interval(0, MAX_DECIMALS))
        self.on_unbalanced = check_scalar(on_unbalanced, "on_unbalanced", str,
                                          choices=("nearest", "skip"))
        self.scale = 10 ** self.decimals  # key = round(C · scale) ∈ [0, 2·scale]
        self.seed = int(seed)
        self.epoch = 0
        check_scalar(max_unique, "max_unique", int, interval=Interval(0))
        n_unique = np.unique(y, axis=0).shape[0]
        # exact: every anchor is compared with every other item (through the distinct labels)
        self.exact = n_unique <= max_unique
        if self.exact:
            self._prepare_groups()

    # -- epoch API ------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        t = self.triplets(self.epoch)
        yield from zip(t.anchor.tolist(), t.similar.tolist(), t.dissimilar.tolist(), strict=True)

    def batches(self, batch_size: int, epoch: int | None = None,
                drop_last: bool = False) -> Iterator[Triplets]:
        """The epoch's triplets cut into consecutive batches of ``batch_size``."""
        batch_size = check_scalar(batch_size, "batch_size", int, interval=Interval(1))
        t = self.triplets(epoch)
        stop = len(t) - len(t) % batch_size if drop_last else len(t)
        for start in range(0, stop, batch_size):
            yield t[start:min(start + batch_size, stop)]

    def triplets(self, epoch: int | None = None) -> Triplets:
        """All triplets of ``epoch`` (default: the one from ``set_epoch``), anchors shuffled."""
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        anchors = rng.permutation(self.n)
        if self.exact:
            parts = self._grouped(anchors, rng)
        else:
            m_cand = min(self.max_candidates, self.n - 1)
            rows = max(1, _CHUNK_ELEMS // (m_cand * max(self.labels.shape[1], 2)))
            chunks = [self._chunk(anchors[i:i + rows], rng) for i in range(0, self.n, rows)]
            parts = [np.concatenate(p) for p in zip(*chunks, strict=True)]
        a, s, d, ok = parts
        y = self.labels
        cs = np.clip(2.0 - np.abs(y[a] - y[s]).sum(axis=1), 0.0, 2.0)
        cd = np.clip(2.0 - np.abs(y[a] - y[d]).sum(axis=1), 0.0, 2.0)
        swap = cs < cd  # the item with the larger C is the similar one
        s, d = np.where(swap, d, s), np.where(swap, s, d)
        cs, cd = np.where(swap, cd, cs), np.where(swap, cs, cd)
        if self.on_unbalanced == "skip":
            return Triplets(a[ok], s[ok], d[ok], cs[ok], cd[ok], np.zeros(int(ok.sum()), bool),
                            n_skipped=int((~ok).sum()))
        return Triplets(a, s, d, cs, cd, ~ok)

    # -- exact path: compare with every other item through the distinct labels ---------------

    def _prepare_groups(self) -> None:
        y = self.labels
        uniq, inv, cnt = np.unique(y, axis=0, return_inverse=True, return_counts=True)
        self._u_inv = inv.reshape(-1)
        self._u_cnt = cnt
        order = np.argsort(self._u_inv, kind="stable")  # items grouped by label
        self._u_items = order
        self._u_start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
        rank = np.empty(self.n, dtype=np.int64)
        rank[order] = np.arange(self.n)
        self._u_offset = rank - self._u_start[self._u_inv]  # item's place within its label
        n_u = uniq.shape[0]
        c = np.clip(2.0 - np.abs(uniq[:, None, :] - uniq[None, :, :]).sum(axis=-1), 0.0, 2.0)
        self._u_keys = np.rint(c * self.scale).astype(np.int32)
        # items of label v an anchor of label u may pair with (never the anchor itself)
        self._u_avail = cnt[None, :] - np.eye(n_u, dtype=np.int64)
        present = np.zeros((n_u, 2 * self.scale + 1), dtype=bool)
        rows, cols = np.nonzero(self._u_avail > 0)
        present[rows, self._u_keys[rows, cols]] = True
        self._u_valid = present & present[:, ::-1]
        self._u_ok = self._u_valid.any(axis=1)
        # fallback pair of labels per anchor label without a valid key (module note)
        self._u_fb = np.zeros((n_u, 2), dtype=np.int64)
        bad = np.flatnonzero(~self._u_ok)
        if bad.size:
            avail = self._u_avail[bad]
            self._u_fb[bad] = np.stack(
                _nearest_pairs(np.where(avail > 0, c[bad], _UNAVAILABLE), avail >= 2), axis=1)
            lone = bad[avail.sum(axis=1) == 1]  # one other item in all: pair it with itself
            self._u_fb[lone] = np.argmax(self._u_avail[lone] > 0, axis=1)[:, None]

    def _grouped(self, anchors: np.ndarray, rng: np.random.Generator):
        n_u = self._u_cnt.size
        top = 2 * self.scale
        rows = max(1, _CHUNK_ELEMS // max(n_u, top + 1))
        out = []
        for i in range(0, anchors.size, rows):
            a = anchors[i:i + rows]
            u = self._u_inv[a]
            m = a.size
            ok = self._u_ok[u]
            key = np.where(self._u_valid[u], rng.random((m, top + 1)), -1.0).argmax(axis=1)
            keys_u = self._u_keys[u]
            mask1 = keys_u == key[:, None]
            mask2 = keys_u == (top - key)[:, None]
            same = 2 * key == top
            if not ok.all():  # fallback rows: the precomputed pair of labels
                bad = ~ok
                fb = self._u_fb[u[bad]]
                mask1[bad] = np.arange(n_u)[None, :] == fb[:, :1]
                mask2[bad] = np.arange(n_u)[None, :] == fb[:, 1:]
                same[bad] = fb[:, 0] == fb[:, 1]
            avail = self._u_avail[u]
            w1 = np.where(mask1, avail, 0)
            w2 = np.where(mask2, avail, 0)
            t1, t2 = w1.sum(axis=1), w2.sum(axis=1)
            r1 = np.floor(rng.random(m) * t1).astype(np.int64)
            # same item set on both sides (key 1.00): draw a second, distinct rank when possible
            distinct = same & (t2 >= 2)
            r2 = np.floor(rng.random(m) * np.where(distinct, t2 - 1, t2)).astype(np.int64)
            r2 += distinct & (r2 >= r1)
            out.append((a, self._item_at(a, u, w1, r1), self._item_at(a, u, w2, r2), ok))
        return [np.concatenate(p) for p in zip(*out, strict=True)]

    def _item_at(self, a, u, w, r) -> np.ndarray:
        """The r-th available item (ranks run over labels in order, then within a label,
        skipping the anchor) for each row's label weights ``w`` (m, U)."""
        cum = np.cumsum(w, axis=1)
        v = (cum <= r[:, None]).sum(axis=1)
        off = r - (cum[np.arange(v.size), v] - w[np.arange(v.size), v])
        off += (v == u) & (off >= self._u_offset[a])  # step over the anchor in its own label
        return self._u_items[self._u_start[v] + off]

    # -- candidate path: a random subset of other items per anchor -----------------------

    def _candidates(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(m, M) candidate indices, never the anchor itself."""
        m = anchors.shape[0]
        if self.n - 1 <= self.max_candidates:
            cand = np.broadcast_to(np.arange(self.n - 1), (m, self.n - 1)).copy()
        else:
            cand = rng.integers(0, self.n - 1, size=(m, self.max_candidates))
        cand += cand >= anchors[:, None]  # skip over the anchor's own index
        return cand

    def _chunk(self, anchors: np.ndarray, rng: np.random.Generator):
        cand = self._candidates(anchors, rng)
        c = _similarity_rows(self.labels, anchors, cand)
        m, n_cand = c.shape
        top = 2 * self.scale
        keys = np.rint(c * self.scale).astype(np.int32)
        present = np.zeros((m, top + 1), dtype=bool)
        present[np.arange(m)[:, None], keys] = True
        valid = present & present[:, ::-1]  # key c kept only if 2 − c is also a key
        ok = valid.any(axis=1)

        # a valid key uniformly: argmax of random scores over the valid ones
        key = np.where(valid, rng.random((m, top + 1)), -1.0).argmax(axis=1)
        # one item per side, uniformly within its key; argmax on one side and argmin on the
        # other of the same scores keeps the two distinct when key = 1.00 has ≥ 2 items
        score = rng.random((m, n_cand))
        j1 = np.where(keys == key[:, None], score, -1.0).argmax(axis=1)
        j2 = np.where(keys == (top - key)[:, None], score, 2.0).argmin(axis=1)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            j1[bad], j2[bad] = _nearest_pairs(c[bad], np.zeros((bad.size, n_cand), bool))
        r = np.arange(m)
        return anchors, cand[r, j1], cand[r, j2], ok


_UNAVAILABLE = 10.0  # similarity value that makes a gap ≥ 8 > any real gap (≤ 2)


def _nearest_pairs(c: np.ndarray, self_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``c`` (f, M) (values in [0, 2], or _UNAVAILABLE), the pair of positions
    (j, k) minimising |c_j + c_k − 2|, with j ≠ k unless ``self_ok[row, j]`` (f, M) allows
    pairing a position with itself. O(M log M) per row: sort, then for each j look up 2 − c_j
    by binary search (rows are offset so one flat searchsorted serves all of them)."""
    f, n_cand = c.shape
    rows = np.arange(f)
    if n_cand == 1:
        z = np.zeros(f, dtype=np.int64)
        return z, z
    order = np.argsort(c, axis=1, kind="stable")
    s = np.take_along_axis(c, order, axis=1)
    span = 4.0 * _UNAVAILABLE  # > range of values and targets, so rows never mix
    off = (rows * span)[:, None]
    pos = np.searchsorted((s + off).ravel(), (2.0 - s + off).ravel()).reshape(f, n_cand)
    pos -= (rows * n_cand)[:, None]
    here = np.arange(n_cand)[None, :]
    best_gap = np.full((f, n_cand), np.inf)
    best_k = np.zeros((f, n_cand), dtype=np.int64)
    for delta in (-2, -1, 0, 1):  # the nearest other position is within these neighbours
        k = np.clip(pos + delta, 0, n_cand - 1)
        gap = np.abs(s + np.take_along_axis(s, k, axis=1) - 2.0)
        gap[k == here] = np.inf
        better = gap < best_gap
        best_gap[better], best_k[better] = gap[better], k[better]
    self_sorted = np.take_along_axis(self_ok, order, axis=1)
    self_gap = np.where(self_sorted, np.abs(2.0 * s - 2.0), np.inf)
    use_self = self_gap < best_gap
    best_gap = np.where(use_self, self_gap, best_gap)
    best_k = np.where(use_self, here, best_k)
    j = best_gap.argmin(axis=1)
    return order[rows, j], order[rows, best_k[rows, j]]
