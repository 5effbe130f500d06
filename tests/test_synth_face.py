"""Face renderer of the generated corpus (core/data/synth/face.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from affectlab.data.synth import face
from affectlab.data.synth.face import (
    IMAGE_SIZE,
    PARAM_NAMES,
    PROTOTYPES,
    blend_truth,
    contact_sheet,
    default_sheet_truths,
    expression_params,
    render_face,
)
from affectlab.data.synth.truth import CATEGORIES, ItemTruth


def _render(truth: ItemTruth, seed: int) -> np.ndarray:
    return render_face(truth, np.random.default_rng(seed))


def _hog(img: np.ndarray) -> np.ndarray:
    # Gradient-orientation histograms: a standard face descriptor that tolerates small shifts.
    return hog(img, orientations=9, pixels_per_cell=(6, 6), cells_per_block=(2, 2))


def _pure_faces(categories, n_per, seed, *, domain=0, intensities=(4, 5)):
    """(n, 64, 64) faces and (n,) labels: random identity, glasses, intensity; pose from rng."""
    r = np.random.default_rng(seed)
    images, labels = [], []
    for label, cat in enumerate(categories):
        for _ in range(n_per):
            truth = blend_truth({cat: 1.0}, intensity=int(r.choice(intensities)),
                                identity=int(r.integers(0, 10_000)), style=int(r.integers(0, 2)),
                                domain=domain)
            images.append(render_face(truth, r))
            labels.append(label)
    return np.stack(images), np.array(labels)


# --- output contract ---------------------------------------------------------------------------

@pytest.mark.parametrize("domain", [0, 1])
@pytest.mark.parametrize("style", [0, 1])
def test_output_is_64x64_uint8_with_content(domain, style):
    img = _render(blend_truth({"fearful": 0.7, "sad": 0.3}, style=style, domain=domain), 3)
    assert img.shape == (IMAGE_SIZE, IMAGE_SIZE) == (64, 64)
    assert img.dtype == np.uint8
    # A face, not a blank or saturated frame: a wide spread of grey levels.
    assert img.std() > 15
    assert np.percentile(img, 99) - np.percentile(img, 1) > 80


def test_same_truth_and_seed_give_identical_bytes():
    truth = blend_truth({"happy": 0.6, "surprised": 0.4}, intensity=4, identity=17, style=1,
                        domain=1)
    assert _render(truth, 99).tobytes() == _render(truth, 99).tobytes()
    assert _render(truth, 99).tobytes() != _render(truth, 100).tobytes()


def test_rng_draws_do_not_depend_on_the_truth():
    # One seed, one pose: the renderer consumes the same number of draws for any item, so a
    # corpus generator's stream stays aligned whatever it renders.
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    render_face(blend_truth({"neutral": 1.0}, intensity=1), a)
    render_face(blend_truth({"surprised": 1.0}, identity=4, style=1, domain=1), b)
    assert a.integers(1 << 62) == b.integers(1 << 62)


# --- identity, style, domain ------------------------------------------------------------------

def test_identities_differ_at_the_same_pose():
    imgs = [_render(blend_truth({"neutral": 1.0}, identity=i), 7).astype(float)
            for i in range(6)]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert np.abs(imgs[i] - imgs[j]).mean() > 3.0, (i, j)


def test_identity_is_fixed_by_its_id_not_by_rng():
    # Averaged over poses, two disjoint sets of renders of one subject agree much better than
    # renders of two subjects do: identity geometry does not come from the caller's rng.
    def mean_face(identity, seeds):
        return np.mean([_render(blend_truth({"neutral": 1.0}, identity=identity), s)
                        for s in seeds], axis=0)

    a1 = mean_face(11, range(0, 12))
    a2 = mean_face(11, range(100, 112))
    b = mean_face(12, range(0, 12))
    assert np.abs(a1 - a2).mean() * 2.0 < np.abs(a1 - b).mean()


def test_glasses_change_the_eye_region_only():
    plain = blend_truth({"happy": 1.0}, identity=3)
    with_glasses = blend_truth({"happy": 1.0}, identity=3, style=1)
    for seed in range(5):
        diff = np.abs(_render(plain, seed).astype(float) - _render(with_glasses, seed))
        rows = diff.sum(axis=1)
        # Eyes sit near row 30; pose moves them a few pixels. Mouth and chin are untouched.
        assert rows[18:40].sum() > 0.97 * rows.sum()
        assert rows[48:].sum() == 0
        assert diff[18:40].mean() > 4.0


def test_domains_differ_in_image_statistics():
    def stats(domain):
        imgs = [_render(blend_truth({c: 1.0}, identity=i, domain=domain), 50 + i).astype(float)
                for i, c in enumerate(CATEGORIES * 3)]
        brightness = np.array([im.mean() for im in imgs])
        corner = np.array([im[:10, :10].mean() for im in imgs])
        # Sensor noise: residual after a 3x3 box blur in the (smooth) top-left background.
        grain = np.array([np.abs(im[1:9, 1:9] - _box3(im[:10, :10])).mean() for im in imgs])
        # Focus: the steepest edge in the frame.
        sharp = np.array([np.abs(np.diff(im, axis=1)).max() for im in imgs])
        return brightness, corner, grain, sharp

    b0, c0, g0, s0 = stats(0)
    b1, c1, g1, s1 = stats(1)
    assert b0.min() > b1.max()  # studio frames are brighter than every "wild" frame
    assert c0.min() > c1.max() + 50  # light plain background vs dark one
    assert np.median(g1) > 1.5 * np.median(g0)  # noisier sensor
    assert np.median(s0) > 1.3 * np.median(s1)  # sharper focus, higher contrast


def _box3(im):
    acc = sum(im[1 + dy: im.shape[0] - 1 + dy, 1 + dx: im.shape[1] - 1 + dx]
              for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return acc / 9.0


# --- expressions ------------------------------------------------------------------------------

def test_categories_are_distinguishable_by_a_simple_classifier():
    x_train, y_train = _pure_faces(CATEGORIES, 50, seed=1)
    x_test, y_test = _pure_faces(CATEGORIES, 15, seed=2)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    model.fit(np.array([_hog(x) for x in x_train]), y_train)
    pred = model.predict(np.array([_hog(x) for x in x_test]))
    assert (pred == y_test).mean() >= 0.9
    # Every category is recognised on its own, not just on average.
    for k in range(len(CATEGORIES)):
        assert (pred[y_test == k] == k).mean() >= 0.7, CATEGORIES[k]


@pytest.mark.slow
def test_categories_stay_learnable_in_the_second_domain():
    x_train, y_train = _pure_faces(CATEGORIES, 60, seed=3, domain=1)
    x_test, y_test = _pure_faces(CATEGORIES, 20, seed=4, domain=1)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    model.fit(np.array([_hog(x) for x in x_train]), y_train)
    assert model.score(np.array([_hog(x) for x in x_test]), y_test) >= 0.75


def test_a_50_50_blend_lands_between_its_components():
    x, y = _pure_faces(("happy", "sad"), 30, seed=5, intensities=(5,))
    axis = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    axis.fit(np.array([_hog(im) for im in x]), y)
    r = np.random.default_rng(6)
    blends = [render_face(blend_truth({"happy": 0.5, "sad": 0.5},
                                      identity=int(r.integers(0, 10_000))), r) for _ in range(20)]
    score_happy = axis.decision_function(np.array([_hog(im) for im in x[y == 0]])).mean()
    score_sad = axis.decision_function(np.array([_hog(im) for im in x[y == 1]])).mean()
    score_blend = axis.decision_function(np.array([_hog(im) for im in blends])).mean()
    frac = (score_blend - score_happy) / (score_sad - score_happy)
    assert 0.2 < frac < 0.8


def test_blend_mouth_curvature_lies_between_the_pure_faces():
    # Mouth-corner height relative to the mouth centre, read off the image with the pose fixed
    # by the seed: corners high when happy, low when sad, in between for a 50/50 blend.
    def corner_lift(weights):
        lifts = []
        for seed in range(6):
            img = _render(blend_truth(weights, identity=2), seed).astype(float)
            neutral = _render(blend_truth({"neutral": 1.0}, identity=2), seed).astype(float)
            diff = neutral - img  # darker than neutral: where the mouth drawing moved to
            rows = np.arange(IMAGE_SIZE)[:, None]
            band = diff[40:56]
            corners = np.concatenate([band[:, 20:26], band[:, 38:44]], axis=1).clip(0, None)
            lifts.append(-(rows[40:56] * corners).sum() / corners.sum())
        return np.mean(lifts)

    happy = corner_lift({"happy": 1.0})
    sad = corner_lift({"sad": 1.0})
    mixed = corner_lift({"happy": 0.5, "sad": 0.5})
    assert happy > mixed > sad


def test_low_intensity_is_closer_to_neutral_than_high():
    for k, cat in enumerate(CATEGORIES[1:], start=1):
        dist = []
        for intensity in (1, 3, 5):
            d = 0.0
            for seed in range(3):
                ref = _render(blend_truth({"neutral": 1.0}, intensity=intensity, identity=k), seed)
                img = _render(blend_truth({cat: 1.0}, intensity=intensity, identity=k), seed)
                d += np.abs(img.astype(float) - ref).mean()
            dist.append(d)
        assert dist[0] < dist[1] < dist[2], cat


def test_neutral_prototype_is_zero_and_others_are_distinct():
    assert PROTOTYPES.shape == (len(CATEGORIES), len(PARAM_NAMES))
    assert np.all(PROTOTYPES[CATEGORIES.index("neutral")] == 0)
    gaps = np.linalg.norm(PROTOTYPES[:, None] - PROTOTYPES[None], axis=-1)
    assert gaps[~np.eye(len(CATEGORIES), dtype=bool)].min() > 0.8


def test_expression_params_hand_worked():
    p = dict(zip(PARAM_NAMES, expression_params(blend_truth({"happy": 0.5, "sad": 0.5})),
                 strict=True))
    # Lip corners: happy +1, sad -1 -> 0 for a 50/50 blend; cheeks only from happy: 0.5.
    assert p["lip_corner"] == pytest.approx(0.0)
    assert p["cheek_raise"] == pytest.approx(0.5)
    assert p["inner_brow_raise"] == pytest.approx(0.5)
    q = dict(zip(PARAM_NAMES, expression_params(blend_truth({"surprised": 1.0}, intensity=2)),
                 strict=True))
    assert q["jaw_drop"] == pytest.approx(0.4 * 1.0)  # intensity 2 of 5 scales the prototype
    assert q["brow_raise"] == pytest.approx(0.4 * 1.0)


@given(st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7).filter(lambda w: sum(w) > 1e-3),
       st.integers(1, 5))
def test_expression_params_are_the_intensity_scaled_blend(weights, intensity):
    truth = blend_truth(dict(zip(CATEGORIES, weights, strict=True)), intensity=intensity)
    parts = [expression_params(blend_truth({c: 1.0}, intensity=intensity)) for c in CATEGORIES]
    expect = np.asarray(truth.dist) @ np.array(parts)
    np.testing.assert_allclose(expression_params(truth), expect, atol=1e-12)


# --- geometry primitives (private, but every formula gets a check) ---------------------------

def test_ellipse_distance_matches_the_exact_circle_distance_near_the_rim():
    ang = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    for radius in (0.9, 1.0, 1.1):  # distance from the centre as a fraction of r = 4
        u = np.float32(4.0 * radius * np.cos(ang))
        v = np.float32(4.0 * radius * np.sin(ang))
        d = face._sd_ellipse(u, v, 0.0, 0.0, 4.0, 4.0)
        exact = 4.0 * radius - 4.0
        # First-order formula: (|p|² - r²) / (2|p|), exact on the rim, close nearby.
        np.testing.assert_allclose(d, (16 * radius**2 - 16) / (8 * radius), rtol=1e-3, atol=1e-4)
        # Within 0.4 px of the rim (where coverage is decided) it is within 6% of exact.
        assert np.all(np.abs(d - exact) <= 0.06 * abs(exact) + 1e-4)


def test_ellipse_distance_is_zero_on_the_rim_and_signed():
    ang = np.linspace(0, 2 * np.pi, 40)
    u, v = 5.0 * np.cos(ang) + 1.0, 2.0 * np.sin(ang) - 3.0
    np.testing.assert_allclose(face._sd_ellipse(u, v, 1.0, -3.0, 5.0, 2.0), 0.0, atol=1e-4)
    assert face._sd_ellipse(np.array([1.0]), np.array([-3.0]), 1.0, -3.0, 5.0, 2.0)[0] < 0
    # On the minor axis the distance is exact: 1 pixel beyond the rim along v.
    out = face._sd_ellipse(np.array([1.0]), np.array([0.0]), 1.0, -3.0, 5.0, 2.0)[0]
    assert out == pytest.approx(1.0 * (9 / 4 - 1) / (2 * 3 / 4), rel=1e-4)  # (F-1)/|grad F|


def test_capsule_distance_hand_worked():
    u = np.array([0.0, 5.0, 13.0, -3.0])
    v = np.array([3.0, 0.0, 4.0, -4.0])
    d = face._sd_capsule(u, v, (0.0, 0.0), (10.0, 0.0), 1.0)
    # Above the segment: 3 - 1; on it: -1; past the end (10, 0): 5 - 1; before the start: 5 - 1.
    np.testing.assert_allclose(d, [2.0, -1.0, 4.0, 4.0])


def test_coverage_is_a_one_subpixel_ramp():
    d = np.array([-1.0, -0.25, 0.0, 0.125, 0.25, 1.0], dtype=np.float32)
    np.testing.assert_allclose(face._coverage(d), [1.0, 1.0, 0.5, 0.25, 0.0, 0.0])


def test_painted_disc_is_antialiased_and_has_the_right_area():
    # A disc of radius 10 px painted on an empty canvas, no pose: after the box downsample its
    # coverage sums to pi r² and its rim pixels take intermediate values (no staircase).
    cond = replace(face._draw_conditions(0, np.random.default_rng(0)), roll=0.0, scale=1.0,
                   shift=(0.0, 0.0))
    canvas = face._Canvas(np.zeros((face._GRID, face._GRID), np.float32), cond)
    face._ellipse(canvas, 0.3, -0.2, 10.0, 10.0, 1.0)
    img = canvas.img.reshape(IMAGE_SIZE, 2, IMAGE_SIZE, 2).mean(axis=(1, 3))
    assert img.sum() == pytest.approx(np.pi * 100.0, rel=0.005)
    partial = (img > 0.02) & (img < 0.98)
    assert partial.sum() >= 40  # about one ring of rim pixels (2 pi r = 63)
    assert len(np.unique(np.round(img[partial], 3))) > 15


# --- input validation -------------------------------------------------------------------------

def test_rejects_bad_inputs_with_named_messages():
    good = blend_truth({"angry": 1.0})
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="truth"):
        render_face({"dist": good.dist}, rng)
    with pytest.raises(TypeError, match="rng"):
        render_face(good, 0)
    with pytest.raises(ValueError, match="truth.intensity"):
        render_face(replace(good, intensity=6), rng)
    with pytest.raises(ValueError, match="truth.intensity"):
        render_face(replace(good, intensity=0), rng)
    with pytest.raises(TypeError, match="truth.intensity"):
        render_face(replace(good, intensity=4.5), rng)
    with pytest.raises(ValueError, match="truth.identity"):
        render_face(replace(good, identity=-1), rng)
    with pytest.raises(ValueError, match="truth.style"):
        render_face(replace(good, style=2), rng)
    with pytest.raises(ValueError, match="truth.domain"):
        render_face(replace(good, domain=2), rng)
    with pytest.raises(ValueError, match="truth.dist"):
        render_face(replace(good, dist=np.ones(6) / 6), rng)
    with pytest.raises(ValueError, match="truth.dist"):
        render_face(replace(good, dist=np.full(7, 0.2)), rng)
    with pytest.raises(ValueError, match="truth.dist"):
        render_face(replace(good, dist=np.array([np.nan] + [1 / 6] * 6)), rng)


def test_blend_truth_fills_valence_and_arousal_from_the_circumplex():
    t = blend_truth({"happy": 1.0, "sad": 1.0}, intensity=3, identity=9, style=1, domain=1)
    assert t.dist[CATEGORIES.index("happy")] == pytest.approx(0.5)
    assert t.valence == pytest.approx((0.8 - 0.7) / 2)  # circumplex: happy 0.8, sad -0.7
    assert t.arousal == pytest.approx((0.5 - 0.5) / 2)
    assert (t.intensity, t.identity, t.style, t.domain) == (3, 9, 1, 1)
    with pytest.raises(ValueError, match="unknown category"):
        blend_truth({"contempt": 1.0})
    with pytest.raises(ValueError, match="weights"):
        blend_truth({"happy": -1.0, "sad": 2.0})
    with pytest.raises(ValueError, match="weights"):
        blend_truth({"happy": 0.0})
    with pytest.raises(TypeError, match="weights"):
        blend_truth([("happy", 1.0)])


def test_contact_sheet_layout_and_tiles():
    rows = [[blend_truth({"happy": 1.0}), blend_truth({"sad": 1.0}, identity=3)],
            [blend_truth({"surprised": 1.0}, style=1)]]
    sheet = contact_sheet(rows, seed=4, pad=3)
    assert sheet.dtype == np.uint8
    assert sheet.shape == (2 * 67 + 3, 2 * 67 + 3)
    # Tile (i, j) is the face rendered with rng seeded by [seed, i, j]; the empty slot is white.
    tile = sheet[3 + 67: 3 + 67 + 64, 3 + 67: 3 + 67 + 64]
    assert np.all(tile == 255)
    expect = render_face(rows[0][1], np.random.default_rng([4, 0, 1]))
    np.testing.assert_array_equal(sheet[3: 3 + 64, 3 + 67: 3 + 67 + 64], expect)
    big = contact_sheet(rows, seed=4, pad=3, upscale=3)
    np.testing.assert_array_equal(big[::3, ::3], sheet)
    with pytest.raises(ValueError, match="rows"):
        contact_sheet([])
    with pytest.raises(ValueError, match="upscale"):
        contact_sheet(rows, upscale=0)


def test_default_sheet_covers_categories_blends_glasses_and_domains():
    rows = default_sheet_truths()
    flat = [t for row in rows for t in row]
    dominant = {CATEGORIES[t.dominant] for t in flat}
    assert dominant == set(CATEGORIES)
    assert any(t.style == 1 for t in flat) and any(t.domain == 1 for t in flat)
    assert any(np.sort(t.dist)[-2] > 0.4 for t in flat)  # some 50/50 blends
    assert contact_sheet().shape == (len(rows) * 66 + 2, 4 * 66 + 2)
