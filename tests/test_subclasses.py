"""Sub-class discovery (SPEC §4, SGM Algorithm 2): per-class Gaussian mixtures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from affectlab.subclasses import SubclassDiscovery, discovery_for_level


def _planted(n_per=40, classes=3, d=4, seed=0):
    """Each class = two well-separated Gaussian blobs; returns (z, class, component)."""
    rng = np.random.default_rng(seed)
    z, cls, comp = [], [], []
    for c in range(classes):
        for m in range(2):
            centre = np.zeros(d)
            centre[0] = 10.0 * c
            centre[1] = 6.0 * m
            z.append(centre + rng.normal(scale=0.5, size=(n_per, d)))
            cls += [c] * n_per
            comp += [m] * n_per
    return np.concatenate(z), np.array(cls), np.array(comp)


def test_recovers_planted_two_component_mixtures():
    z, cls, comp = _planted()
    disc = SubclassDiscovery(2, seed=0).fit(z, cls)
    assert disc.n_subclasses_ == 6
    truth = cls * 2 + comp
    assert adjusted_rand_score(truth, disc.labels_) > 0.95
    assert normalized_mutual_info_score(truth, disc.labels_) > 0.95
    pairs = disc.transform(z, cls)
    assert pairs.shape == (len(z), 2)
    assert np.array_equal(pairs[:, 0], cls)  # sub-classes stay inside their class
    np.testing.assert_array_equal(disc.subclass_class_, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(disc.subclass_component_, [0, 1, 0, 1, 0, 1])


def test_predict_without_labels_finds_class_and_component():
    z, cls, comp = _planted(seed=1)
    disc = SubclassDiscovery(2).fit(z, cls)
    new, ncls, ncomp = _planted(n_per=10, seed=2)
    ids = disc.predict(new)
    assert np.array_equal(disc.subclass_class_[ids], ncls)
    assert adjusted_rand_score(ncls * 2 + ncomp, ids) > 0.95


def test_bic_chooses_the_planted_number():
    z, cls, _ = _planted()
    rng = np.random.default_rng(3)
    single = rng.normal(size=(60, 4)) + np.array([50.0, 0, 0, 0])
    z = np.concatenate([z, single])
    cls = np.concatenate([cls, np.full(60, 3)])
    disc = SubclassDiscovery("bic", max_components=4).fit(z, cls)
    counts = {c: g.n_components for c, g in disc.mixtures_.items()}
    assert counts == {0: 2, 1: 2, 2: 2, 3: 1}


def test_component_proba_blocks_sum_to_one_per_class():
    z, cls, _ = _planted(n_per=15)
    disc = SubclassDiscovery(2).fit(z, cls)
    p = disc.component_proba(z)
    assert p.shape == (len(z), disc.n_subclasses_)
    for c in disc.classes_:
        np.testing.assert_allclose(p[:, disc.subclass_class_ == c].sum(1), 1.0, atol=1e-9)


def test_class_subclass_ids_hard_component_within_every_class():
    z, cls, comp = _planted(n_per=15, seed=4)
    disc = SubclassDiscovery(2).fit(z, cls)
    ids = disc.class_subclass_ids(z)
    assert ids.shape == (len(z), 3)
    for j, c in enumerate(disc.classes_):
        # column j: an id of class c, the argmax of c's responsibilities, for every row
        assert np.all(disc.subclass_class_[ids[:, j]] == c)
        block = disc.component_proba(z)[:, disc.subclass_class_ == c]
        np.testing.assert_array_equal(ids[:, j], disc._first_id[int(c)] + block.argmax(1))
    # the own-class column is the training relabelling
    np.testing.assert_array_equal(ids[np.arange(len(z)), cls], disc.labels_)


def test_discovery_for_level_is_algorithm_2s_component_rule():
    z, cls, _ = _planted(n_per=30)
    assert discovery_for_level(3).fit(z, cls).n_subclasses_ == 3 * 3  # l per class
    bic = discovery_for_level(4, "bic").fit(z, cls)
    assert bic.max_components == 4 and bic.n_subclasses_ == 2 * 3  # planted: 2 a class
    assert discovery_for_level(5, 1).fit(z, cls).n_subclasses_ == 3
    with pytest.raises(ValueError, match="level must be an integer ≥ 2"):
        discovery_for_level(1)
    with pytest.raises(ValueError, match="n_components"):
        discovery_for_level(3, "many")


def test_medoids_are_the_members_nearest_the_centroid():
    z, cls, _ = _planted(n_per=25)
    disc = SubclassDiscovery(2).fit(z, cls)
    med = disc.medoids(k=5)
    assert sorted(med) == list(range(6))
    means = disc.centroids()
    for s, idx in med.items():
        members = np.flatnonzero(disc.labels_ == s)
        dist = np.linalg.norm(z[members] - means[s], axis=1)
        assert len(idx) == 5 and set(idx) <= set(members)
        assert idx[0] == members[np.argmin(dist)]  # medoid first
        d_idx = np.linalg.norm(z[idx] - means[s], axis=1)
        assert np.all(np.diff(d_idx) >= 0)
        assert d_idx[-1] <= np.sort(dist)[4] + 1e-12  # the 5 nearest, nothing farther


def test_names_and_small_classes():
    z, cls, _ = _planted(n_per=10, classes=2)
    z = np.concatenate([z, [[99.0, 0, 0, 0]]])
    cls = np.concatenate([cls, [2]])  # a class with one item gets one component
    disc = SubclassDiscovery(2, class_names=["calm", "tense", "odd"]).fit(z, cls)
    assert disc.n_subclasses_ == 5
    assert disc.subclass_names(np.array([0, 1, 4])) == ["calm / 1", "calm / 2", "odd / 1"]
    assert disc.medoids(3)[4].tolist() == [len(z) - 1]


def test_input_validation():
    z, cls, _ = _planted(n_per=5)
    with pytest.raises(ValueError, match="n_components"):
        SubclassDiscovery(0)
    with pytest.raises(ValueError, match="covariance_type"):
        SubclassDiscovery(2, covariance_type="weird")
    with pytest.raises(ValueError, match="embeddings"):
        SubclassDiscovery().fit(z[:, 0], cls)
    with pytest.raises(ValueError, match="labels"):
        SubclassDiscovery().fit(z, cls[:-1])
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SubclassDiscovery().fit(bad, cls)
    with pytest.raises(RuntimeError, match="not fitted"):
        SubclassDiscovery().predict(z)
    disc = SubclassDiscovery().fit(z, cls)
    with pytest.raises(ValueError, match="columns"):
        disc.predict(z[:, :2])
    with pytest.raises(ValueError, match="no items in fit"):
        disc.predict(z[:2], np.array([0, 9]))
    with pytest.raises(ValueError, match="k must"):
        disc.medoids(0)
