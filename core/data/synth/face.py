"""Face renderer of the generated corpus: 64×64 grayscale faces drawn from expression parameters.

An item's expression is a vector of FACS-inspired parameters (brow raise, inner-brow raise,
brow lowering, eye openness, cheek raise, nose wrinkle, lip-corner pull, mouth opening, …).
Each category has a prototype vector at full intensity; an item's vector is the blend of the
prototypes weighted by its true distribution, scaled by ``intensity / 5`` (neutral is the zero
vector), so a 50/50 happy/sad item is drawn half-way between the two faces.

Identity (face shape, eye spacing, skin and hair tone, hairline) comes from a generator seeded by
the identity alone, so the same subject looks the same in every item. Head pose, lighting,
expression jitter and pixel noise come from the caller's ``rng``. Domain 1 is a second "corpus":
side lighting, lower contrast, blur, more noise and a dark striped background.

Shapes are signed-distance fields (ellipses, capsules, curve bands) evaluated on a 2× supersampled
grid with a one-sub-pixel smooth edge, then box-downsampled: anti-aliased, fully vectorised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from affectlab.data.synth.truth import CATEGORIES, CIRCUMPLEX, ItemTruth
from affectlab.validation import check_distribution

IMAGE_SIZE = 64
N_DOMAINS = 2
_SS = 2  # supersampling factor per axis
_GRID = IMAGE_SIZE * _SS
_CENTER = (32.0, 33.0)  # canonical face centre (x, y) in output pixels

# --- expression parameters -------------------------------------------------------------------

PARAM_NAMES: tuple[str, ...] = (
    "brow_raise",        # AU1+2: whole brow up
    "inner_brow_raise",  # AU1: inner ends up -> oblique brows
    "brow_lower",        # AU4: brows down, inner ends more
    "brow_together",     # AU4: inner ends drawn to the midline
    "eye_open",          # AU5 (+) / lid droop or squint (-)
    "cheek_raise",       # AU6: lower lids up, cheek highlight, deep nasolabial folds
    "nose_wrinkle",      # AU9: bridge wrinkles, nostrils up
    "upper_lip_raise",   # AU10: upper lip contour lifted
    "lip_corner",        # AU12 (+) / AU15 (-): corners up or down
    "lip_stretch",       # AU20 (+) / pucker, rounding (-): mouth width
    "lip_press",         # AU23/24: thin, tight lips
    "chin_raise",        # AU17: chin boss pushed up, a crease under the lower lip
    "jaw_drop",          # AU25-27: mouth opening, longer chin
    "teeth",             # how much of the upper teeth shows in the opening
)
_P = {name: i for i, name in enumerate(PARAM_NAMES)}


def _prototype(**values: float) -> np.ndarray:
    vec = np.zeros(len(PARAM_NAMES))
    for name, value in values.items():
        vec[_P[name]] = value
    return vec


# Full-intensity prototype per category (rows in CATEGORIES order); neutral is the zero vector.
PROTOTYPES: np.ndarray = np.stack([
    _prototype(),
    _prototype(cheek_raise=1.0, lip_corner=1.0, lip_stretch=0.45, jaw_drop=0.45, teeth=1.0,
               eye_open=-0.25),
    _prototype(inner_brow_raise=1.0, brow_together=0.45, eye_open=-0.45, lip_corner=-1.0,
               lip_stretch=-0.1, chin_raise=0.4),
    _prototype(brow_lower=1.0, brow_together=1.0, eye_open=0.25, lip_press=1.0, lip_corner=-0.25,
               lip_stretch=-0.3, nose_wrinkle=0.2, chin_raise=0.9),
    _prototype(brow_raise=0.7, inner_brow_raise=0.75, brow_together=0.8, eye_open=1.0,
               lip_stretch=1.0, jaw_drop=0.45, lip_corner=-0.35, teeth=0.4),
    _prototype(nose_wrinkle=1.0, upper_lip_raise=1.0, brow_lower=0.7, brow_together=0.4,
               eye_open=-0.45, cheek_raise=0.45, lip_corner=-0.5, jaw_drop=0.1, teeth=0.7),
    _prototype(brow_raise=1.0, inner_brow_raise=0.1, eye_open=1.1, jaw_drop=1.0,
               lip_stretch=-0.6),
])
PROTOTYPES.setflags(write=False)
_EXPRESSION_JITTER = 0.05  # sd of per-item expression variation, in prototype units


def expression_params(truth: ItemTruth) -> np.ndarray:
    """The (14,) expression vector of ``truth`` (no jitter): ``intensity/5 · dist @ PROTOTYPES``."""
    _check_truth(truth)
    return _expression(truth)


def _expression(truth: ItemTruth) -> np.ndarray:
    return (truth.intensity / 5.0) * (np.asarray(truth.dist, dtype=np.float64) @ PROTOTYPES)


# --- identity --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Identity:
    half_width: float   # face half-width at the cheeks
    half_height: float  # face half-height
    chin_taper: float   # how much narrower the jaw is than the cheeks
    eye_sep: float      # half the distance between eye centres
    eye_w: float        # eye half-width
    iris_r: float
    brow_thick: float   # brow capsule radius
    mouth_w: float      # mouth half-width at rest
    mouth_y: float      # mouth height below the face centre
    nose_y: float       # nostril height below the face centre
    hairline: float     # hairline height at the midline (negative: above centre)
    hair_curve: float   # hairline drop at the temples
    hair_len: float     # how far the hair behind the face reaches down (short crop .. jaw)
    part: float         # side parting offset of the fringe
    skin: float         # skin albedo
    hair: float         # hair albedo


@lru_cache(maxsize=4096)
def _identity(identity: int) -> _Identity:
    # Seeded by the identity alone (never the caller's rng): a subject looks the same everywhere.
    g = np.random.default_rng([int(identity), 0xFACE])
    return _Identity(
        half_width=float(g.uniform(17.0, 21.5)),
        half_height=float(g.uniform(23.0, 26.0)),
        chin_taper=float(g.uniform(0.15, 0.4)),
        eye_sep=float(g.uniform(8.3, 10.3)),
        eye_w=float(g.uniform(3.1, 3.8)),
        iris_r=float(g.uniform(1.5, 1.9)),
        brow_thick=float(g.uniform(0.85, 1.2)),
        mouth_w=float(g.uniform(6.3, 7.8)),
        mouth_y=float(g.uniform(13.0, 15.0)),
        nose_y=float(g.uniform(6.0, 7.5)),
        hairline=float(g.uniform(-20.0, -15.5)),
        hair_curve=float(g.uniform(2.0, 7.0)),
        hair_len=float(g.uniform(0.0, 16.0)),
        part=float(g.uniform(-0.4, 0.4)),
        skin=float(g.uniform(0.48, 0.82)),
        hair=float(g.uniform(0.06, 0.4)),
    )


# --- signed-distance primitives (face coordinates, output-pixel units) -----------------------

def _sd_ellipse(u, v, cu, cv, a, b):
    """Approximate signed distance to an axis-aligned ellipse: first-order (F - 1) / |grad F| of
    F = x² + y² in normalised coordinates, exact on the rim, which is all coverage needs."""
    x = (u - np.float32(cu)) * np.float32(1.0 / a)
    y = (v - np.float32(cv)) * np.float32(1.0 / b)
    q = x * x
    q += y * y
    q -= 1.0
    x *= np.float32(1.0 / a)
    y *= np.float32(1.0 / b)
    x *= x
    y *= y
    x += y
    np.sqrt(x, out=x)
    x *= 2.0
    x += 1e-4
    q /= x
    return q


def _sd_capsule(u, v, p, q, r):
    """Signed distance to the segment p–q thickened to radius r."""
    pu, pv = p
    du, dv = q[0] - pu, q[1] - pv
    wu, wv = u - pu, v - pv
    h = np.clip((wu * du + wv * dv) / (du * du + dv * dv + 1e-9), 0.0, 1.0)
    return np.sqrt((wu - h * du) ** 2 + (wv - h * dv) ** 2) - r


def _coverage(d):
    """Area coverage of a sub-pixel from its signed distance (negative inside)."""
    a = np.float32(0.5) - d * np.float32(_SS)
    return np.clip(a, 0.0, 1.0, out=a)


class _Canvas:
    """Painter's-algorithm compositing on the supersampled grid.

    Shapes are evaluated only inside a window: the image-space bounding box of a face-space box,
    so a small feature costs a few hundred sub-pixels rather than the whole grid.
    """

    def __init__(self, base: np.ndarray, cond: _Conditions):
        self.img = base
        self.cos, self.sin = float(np.cos(cond.roll)), float(np.sin(cond.roll))
        self.scale = cond.scale
        self.cx, self.cy = _CENTER[0] + cond.shift[0], _CENTER[1] + cond.shift[1]
        x = (_X - np.float32(self.cx)) / np.float32(self.scale)
        y = (_Y - np.float32(self.cy)) / np.float32(self.scale)
        self.u = np.float32(self.cos) * x + np.float32(self.sin) * y
        self.v = np.float32(-self.sin) * x + np.float32(self.cos) * y

    def window(self, box, du: float = 0.0):
        """Slices of the grid covering face box (u0, u1, v0, v1) shifted by ``du``, and the face
        coordinates there (with ``du`` taken off u)."""
        u0, u1, v0, v1 = box
        c, s, k = self.cos, self.sin, self.scale
        xs = [self.cx + k * (c * (uu + du) - s * vv) for uu in (u0, u1) for vv in (v0, v1)]
        ys = [self.cy + k * (s * (uu + du) + c * vv) for uu in (u0, u1) for vv in (v0, v1)]
        c0, c1 = _index_range(min(xs), max(xs))
        r0, r1 = _index_range(min(ys), max(ys))
        sl = (slice(r0, r1), slice(c0, c1))
        u = self.u[sl]
        return sl, (u - np.float32(du) if du else u), self.v[sl]

    def paint(self, sl, d, value, opacity=1.0):
        a = _coverage(d)
        if opacity != 1.0:
            a *= opacity
        view = self.img[sl]
        view += a * (value - view)


def _index_range(lo: float, hi: float) -> tuple[int, int]:
    start = min(max(math.floor(lo * _SS - 1.0), 0), _GRID)
    stop = min(max(math.ceil(hi * _SS + 1.0), start), _GRID)
    return start, stop


def _box_points(points, r: float):
    us = [q[0] for q in points]
    vs = [q[1] for q in points]
    m = r + 1.0
    return min(us) - m, max(us) + m, min(vs) - m, max(vs) + m


def _box_ellipse(cu, cv, a, b):
    return cu - a - 1.0, cu + a + 1.0, cv - b - 1.0, cv + b + 1.0


def _capsule(canvas, p, q, r, value, opacity=1.0, du=0.0):
    sl, u, v = canvas.window(_box_points((p, q), r), du)
    canvas.paint(sl, _sd_capsule(u, v, p, q, r), value, opacity)


def _ellipse(canvas, cu, cv, a, b, value, opacity=1.0, du=0.0):
    sl, u, v = canvas.window(_box_ellipse(cu, cv, a, b), du)
    canvas.paint(sl, _sd_ellipse(u, v, cu, cv, a, b), value, opacity)


# --- rendering --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Conditions:
    roll: float
    scale: float
    shift: tuple[float, float]
    yaw: float
    light: np.ndarray      # (3,) unit light direction
    ambient: float
    diffuse: float
    gradient: tuple[float, float]
    contrast: float
    blur: float
    noise: float
    background: float
    stripes: float
    stripe_phase: float


def _draw_conditions(domain: int, rng: np.random.Generator) -> _Conditions:
    # The same number of draws in the same order for every truth: one seed, one pose.
    roll = float(np.clip(rng.normal(0.0, np.deg2rad(4.0)), -0.2, 0.2))
    scale = float(rng.uniform(0.93, 1.06))
    shift = (float(rng.normal(0.0, 1.2)), float(rng.normal(0.0, 1.0)))
    yaw = float(np.clip(rng.normal(0.0, 0.8), -2.0, 2.0))
    side = 1.0 if rng.random() < 0.5 else -1.0
    lx, ly = rng.normal(0.0, 0.15), rng.normal(0.0, 0.1)
    gx, gy = rng.normal(0.0, 1.0), rng.normal(0.0, 1.0)
    bg = rng.uniform(0.0, 1.0)
    phase = rng.uniform(0.0, 2 * np.pi)
    if domain == 0:  # studio: frontal soft light, light plain background, clean sensor
        light = np.array([lx, -0.3 + ly, 1.0])
        return _Conditions(roll, scale, shift, yaw, light / np.linalg.norm(light), 0.62, 0.42,
                           (0.04 * gx, 0.04 * gy), 1.0, 0.0, 0.012, 0.72 + 0.14 * bg, 0.0, phase)
    # "In the wild": hard side light, dark striped background, soft focus, grainy sensor.
    light = np.array([side * (0.75 + lx), -0.2 + ly, 0.7])
    return _Conditions(roll, scale, shift, yaw, light / np.linalg.norm(light), 0.45, 0.7,
                       (0.1 * gx, 0.1 * gy), 0.8, 0.6, 0.025, 0.25 + 0.12 * bg, 0.035, phase)


def _grid():
    c = (np.arange(_GRID, dtype=np.float32) + 0.5) / _SS
    return np.meshgrid(c, c)  # X (columns), Y (rows), output-pixel units


_X, _Y = _grid()
_STRIPE_SIN, _STRIPE_COS = np.sin((_X + _Y) * 0.45), np.cos((_X + _Y) * 0.45)


def render_face(truth: ItemTruth, rng: np.random.Generator) -> np.ndarray:
    """Render one face.

    truth: the item (its dist, intensity, identity, style and domain are drawn; valence and
           arousal are not used directly, they follow from dist).
    rng:   draws head pose, lighting, expression jitter and pixel noise.
    Returns a (64, 64) uint8 grayscale image. Deterministic given ``truth`` and the rng state.
    """
    _check_truth(truth)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    cond = _draw_conditions(truth.domain, rng)
    jitter = rng.normal(0.0, _EXPRESSION_JITTER, size=len(PARAM_NAMES))
    noise = rng.standard_normal((IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    params = _expression(truth) + jitter * (truth.intensity / 5.0)
    ident = _identity(int(truth.identity))

    canvas = _Canvas(_background(cond), cond)
    _draw_face(canvas, params, ident, truth.style, cond)
    full = canvas.img  # 2x2 box downsample of the supersampled grid (_SS == 2)
    img = (full[0::2, 0::2] + full[1::2, 0::2] + full[0::2, 1::2] + full[1::2, 1::2]) * 0.25
    return _finish(img, cond, noise)


def _background(cond: _Conditions) -> np.ndarray:
    base = np.float32(cond.background) + np.float32(0.06) * (_Y / IMAGE_SIZE - 0.5)
    if cond.stripes:
        # sin(w + phase) from precomputed sin(w), cos(w): one multiply-add per sub-pixel.
        c = np.float32(cond.stripes * np.cos(cond.stripe_phase))
        s = np.float32(cond.stripes * np.sin(cond.stripe_phase))
        base += c * _STRIPE_SIN + s * _STRIPE_COS
    return base


def _draw_face(canvas: _Canvas, p: np.ndarray, ident: _Identity, style: int, cond: _Conditions):
    skin, hair = ident.skin, ident.hair
    hw = ident.half_width
    hh = ident.half_height + 2.5 * max(p[_P["jaw_drop"]], 0.0)  # a dropped jaw lengthens the face

    # Neck and ears behind the head, hair volume behind the face.
    neck_w = 0.5 * hw
    sl, u, v = canvas.window((-neck_w - 1, neck_w + 1, 0.55 * hh - 1, 2.0 * IMAGE_SIZE))
    canvas.paint(sl, np.maximum(np.abs(u) - neck_w, 0.55 * hh - v), skin * 0.78)
    for s in (-1.0, 1.0):
        _ellipse(canvas, s * hw, -1.0, 2.4, 4.6, skin * 0.9)
    # Head: an ellipse whose half-width shrinks towards the chin, over a hair volume.
    back_b = 0.8 * hh + 1.5
    sl, u, v = canvas.window((-hw - 3.5, hw + 3.5, -5.0 - back_b - 1.0, hh + 1.0))
    hair_back = np.maximum(_sd_ellipse(u, v, 0.0, -5.0, hw + 2.2, back_b), v - ident.hair_len)
    canvas.paint(sl, hair_back, hair)
    taper = 1.0 - ident.chin_taper * np.clip(v / hh, 0.0, 1.0) ** 2
    head = _sd_ellipse(u / taper, v, 0.0, 0.0, hw, hh)
    canvas.paint(sl, head, skin)

    du = cond.yaw  # interior features slide with yaw (the outline does not)
    _draw_forehead_lines(canvas, p, ident, skin, du)
    # Hair in front of the forehead above a hairline that drops towards the temples.
    hairline = (ident.hairline + ident.hair_curve * (u / hw) ** 2
                + 1.2 * np.abs(u - ident.part * hw) / hw)
    canvas.paint(sl, np.maximum(head, v - hairline), hair)
    # Shade head and hair before the features: those stay legible, as dark features do.
    _shade(canvas, sl, u, v, _coverage(np.minimum(head, hair_back)), hw, hh, cond)

    _draw_brows(canvas, p, ident, hair, du)
    _draw_eyes(canvas, p, ident, skin, du)
    mouth = _mouth_geometry(p, ident)
    _draw_cheeks_and_nose(canvas, p, ident, skin, mouth, du)
    _draw_mouth(canvas, p, skin, mouth, du)
    if style == 1:
        _draw_glasses(canvas, ident, du)


def _shade(canvas, sl, u, v, mask, hw, hh, cond: _Conditions):
    """Lambertian shading of the head as an ellipsoid, applied where ``mask`` (head and hair
    coverage) is; normalised so a frontally lit face keeps its albedo at the centre."""
    nx = u / (hw + 3.0)
    ny = v / (hh + 3.0)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.02, 1.0))
    lx, ly, lz = (float(c) for c in cond.light)
    lambert = np.clip(nx * lx + ny * ly + nz * lz, 0.0, None)
    shade = (cond.ambient + cond.diffuse * lambert) / (cond.ambient + cond.diffuse * lz)
    canvas.img[sl] *= 1.0 + mask * (shade - 1.0)


def _draw_forehead_lines(canvas, p, ident, skin, du):
    raise_ = float(np.clip(p[_P["brow_raise"]] + 0.6 * p[_P["inner_brow_raise"]], 0.0, 1.0))
    if raise_ > 0.05:  # horizontal forehead creases when the brows go up
        for dv in (5.2, 7.6):
            y = -9.0 - dv
            _capsule(canvas, (-6.0, y), (6.0, y), 0.35, skin * 0.6, 0.7 * raise_, du)
    knit = float(np.clip(max(p[_P["brow_lower"]], 0.0) + 0.5 * p[_P["brow_together"]], 0.0, 1.0))
    if knit > 0.05:  # vertical glabella lines when the brows are drawn down and together
        for s in (-1.0, 1.0):
            _capsule(canvas, (s * 1.1, -8.5), (s * 0.9, -4.5), 0.35, skin * 0.55, 0.8 * knit, du)


def _brow_points(p, ident, side):
    """Inner, middle and outer brow points (u, v) for one side (+1 right, -1 left)."""
    e = ident.eye_sep
    raise_, inner = p[_P["brow_raise"]], p[_P["inner_brow_raise"]]
    lower, together = max(p[_P["brow_lower"]], 0.0), p[_P["brow_together"]]
    lift = -3.4 * raise_ + 1.9 * lower
    pts = [
        [e - 4.6 - 1.8 * together, -8.6 + lift - 3.0 * inner + 1.8 * lower],
        [e - 0.2 - 0.8 * together, -9.6 + lift - 1.3 * inner + 0.4 * lower],
        [e + 4.6, -8.9 + lift + 0.3 * inner],
    ]
    return [(side * pu, pv) for pu, pv in pts]


def _draw_brows(canvas, p, ident, hair, du):
    tone = min(hair, 0.3)
    r = ident.brow_thick * (1.0 + 0.15 * max(p[_P["brow_lower"]], 0.0))  # lowered brows bunch
    for side in (-1.0, 1.0):
        a, b, c = _brow_points(p, ident, side)
        sl, u, v = canvas.window(_box_points((a, b, c), r), du)
        d = np.minimum(_sd_capsule(u, v, a, b, r), _sd_capsule(u, v, b, c, 0.85 * r))
        canvas.paint(sl, d, tone)


def _draw_eyes(canvas, p, ident, skin, du):
    open_ = p[_P["eye_open"]]
    cheek = max(p[_P["cheek_raise"]], 0.0)
    eh = max(1.55 * (1.0 + 0.9 * open_), 0.35)
    ew = ident.eye_w * (1.0 + 0.06 * open_)
    for side in (-1.0, 1.0):
        cu, cv = side * ident.eye_sep, -3.0
        sl, u, v = canvas.window(_box_ellipse(cu, cv, ew + 0.6, eh + 0.6), du)
        eye = _sd_ellipse(u, v, cu, cv, ew, eh)
        eye = np.maximum(eye, v - (cv + eh * (1.0 - 0.55 * cheek)))  # cheeks push lower lid up
        canvas.paint(sl, eye - 0.55, skin * 0.35)  # lid line and lashes
        canvas.paint(sl, eye, 0.9)  # sclera
        iris = _sd_ellipse(u, v, cu, cv + 0.15, ident.iris_r, ident.iris_r)
        canvas.paint(sl, np.maximum(iris, eye), 0.1)
        if cheek > 0.05:  # lower-lid bulge
            y = cv + eh * 0.7 + 1.3
            _capsule(canvas, (cu - ew * 0.8, y), (cu + ew * 0.8, y), 0.35, skin * 0.7,
                     0.8 * min(cheek, 1.0), du)


@dataclass(frozen=True)
class _Mouth:
    cv: float      # centre height
    w: float       # half-width
    k: float       # corner lift (positive: corners up)
    up: float      # opening above the lip line
    lo: float      # opening below the lip line
    lip_u: float   # upper lip thickness
    lip_l: float   # lower lip thickness
    teeth: float   # teeth band height
    press: float   # 0..1 lip press
    chin: float    # 0..1 chin raise


def _mouth_geometry(p, ident) -> _Mouth:
    jaw = max(p[_P["jaw_drop"]], 0.0)
    press = float(np.clip(p[_P["lip_press"]], 0.0, 1.0))
    corner = p[_P["lip_corner"]]
    ulr = max(p[_P["upper_lip_raise"]], 0.0)
    w = ident.mouth_w * (1.0 + 0.32 * p[_P["lip_stretch"]] - 0.22 * press
                         + 0.12 * max(corner, 0.0))
    opening = 8.5 * jaw
    up, lo = 0.35 * opening + 2.2 * ulr, 0.65 * opening
    teeth = float(np.clip(p[_P["teeth"]], 0.0, 1.0)) * min(2.4, 0.55 * (up + lo))
    return _Mouth(cv=ident.mouth_y + 0.9 * jaw, w=max(w, 2.5), k=3.6 * corner, up=up, lo=lo,
                  lip_u=1.3 * (1.0 - 0.8 * press), lip_l=1.8 * (1.0 - 0.8 * press), teeth=teeth,
                  press=press, chin=float(np.clip(p[_P["chin_raise"]], 0.0, 1.0)))


def _draw_cheeks_and_nose(canvas, p, ident, skin, m: _Mouth, du):
    cheek = max(p[_P["cheek_raise"]], 0.0)
    wrinkle = max(p[_P["nose_wrinkle"]], 0.0)
    if cheek > 0.05:  # raised cheeks catch the light
        for side in (-1.0, 1.0):
            _ellipse(canvas, side * (ident.eye_sep + 0.5), 4.5, 4.2, 2.8, min(skin + 0.15, 1.0),
                     0.5 * min(cheek, 1.0), du)
    # Nasolabial folds from the nose wings to just outside the mouth corners.
    fold = float(np.clip(0.2 + 0.7 * cheek + 0.6 * wrinkle + 0.3 * max(p[_P["lip_stretch"]], 0),
                         0.0, 1.0))
    for side in (-1.0, 1.0):
        a = (side * 3.6, ident.nose_y - 1.2 - 0.8 * wrinkle)
        b = (side * (m.w + 1.4), m.cv - m.k + 1.2)
        _capsule(canvas, a, b, 0.4, skin * 0.55, fold, du)
    # Nose (further forward, so it slides further with yaw): faint side shadow, nostrils that
    # flare and lift with a wrinkle, bridge wrinkles.
    dn = 1.3 * du
    _capsule(canvas, (1.4, -1.0), (2.1, ident.nose_y - 1.0), 0.45, skin * 0.7, 0.5, dn)
    ny = ident.nose_y - 0.9 * wrinkle
    for side in (-1.0, 1.0):
        _ellipse(canvas, side * 1.8 * (1 + 0.25 * wrinkle), ny, 1.2, 0.7, skin * 0.3, 1.0, dn)
    if wrinkle > 0.05:
        for dv in (-0.8, 1.2):
            _capsule(canvas, (-2.4, dv), (2.4, dv - 0.3), 0.35, skin * 0.5,
                     0.9 * min(wrinkle, 1.0), dn)


def _draw_mouth(canvas, p, skin, m: _Mouth, du):
    k_top = min(m.k, 0.0)
    box = (-m.w - 1.0, m.w + 1.0, m.cv - max(m.k, 0.0) - m.up - m.lip_u - 1.5,
           m.cv - k_top + m.lo + m.lip_l + 1.5)
    sl, u, v = canvas.window(box, du)
    t = np.clip(u / m.w, -1.0, 1.0)
    f = np.sqrt(1.0 - t * t)                  # opening and lip profile (elliptic)
    centre = m.cv - m.k * t * t               # lip line, corners lifted by k
    ends = np.abs(u) - m.w
    slope = np.sqrt(1.0 + (2.0 * m.k * t / m.w) ** 2)  # vertical -> normal distance
    top = centre - m.up * f
    bottom = centre + m.lo * f
    lips = np.maximum(np.maximum(top - m.lip_u * f - v, v - bottom - m.lip_l * f) / slope, ends)
    canvas.paint(sl, lips, skin * 0.75)
    if m.up + m.lo > 0.3:
        opening = np.maximum(np.maximum(top - v, v - bottom) / slope, ends)
        canvas.paint(sl, opening, 0.08)
        if m.teeth > 0.1:
            canvas.paint(sl, np.maximum(opening, (v - top - m.teeth) / slope), 0.88)
    line = np.maximum(np.abs(v - centre) / slope - (0.45 + 0.25 * m.press), ends + 0.3)
    if m.up + m.lo > 0.3:  # the lip line runs only where the lips meet, not across the opening
        line = np.maximum(line, -opening)
    canvas.paint(sl, line, 0.12 * skin)
    if m.chin > 0.05:  # chin boss pushed up: a curved crease below the lower lip
        y = m.cv + m.lo + m.lip_l + 2.2
        sl, u, v = canvas.window((-m.w, m.w, y - 2.0, y + 2.0), du)
        arc = np.abs(v - (y + 1.2 * (u / (0.6 * m.w)) ** 2)) - 0.4
        canvas.paint(sl, np.maximum(arc, np.abs(u) - 0.6 * m.w), skin * 0.55, 0.9 * m.chin)


def _draw_glasses(canvas, ident, du):
    e, rw, rh, cv = ident.eye_sep, 4.9, 3.4, -2.8
    frame = 0.05
    for side in (-1.0, 1.0):
        sl, u, v = canvas.window(_box_ellipse(side * e, cv, rw + 0.5, rh + 0.5), du)
        lens = _sd_ellipse(u, v, side * e, cv, rw, rh)
        canvas.paint(sl, lens, 0.97, 0.12)  # faint glare on the glass
        canvas.paint(sl, np.abs(lens) - 0.5, frame)
        _capsule(canvas, (side * (e + rw - 0.2), cv - 0.8),
                 (side * (ident.half_width + 1.0), cv - 1.2), 0.45, frame, 1.0, du)
    _capsule(canvas, (-(e - rw) - 0.3, cv - 1.3), ((e - rw) + 0.3, cv - 1.3), 0.45, frame, 1.0, du)


def _finish(img, cond: _Conditions, noise):
    c = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE - 0.5
    img = img * (1.0 + cond.gradient[0] * c[None, :] + cond.gradient[1] * c[:, None])
    if cond.contrast != 1.0:
        img = 0.45 + cond.contrast * (img - 0.45)
    if cond.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), cond.blur)
    img = img + cond.noise * noise
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --- input checks and helpers for callers ----------------------------------------------------

def _check_truth(truth) -> None:
    if not isinstance(truth, ItemTruth):
        raise TypeError(f"truth must be an ItemTruth, got {type(truth).__name__}")
    dist = np.asarray(truth.dist, dtype=np.float64)
    if dist.shape != (len(CATEGORIES),):
        raise ValueError(f"truth.dist must have shape ({len(CATEGORIES)},), got {dist.shape}")
    if not np.isfinite(dist).all():
        raise ValueError("truth.dist must be finite")
    check_distribution(dist, "truth.dist")
    _check_int(truth.intensity, "truth.intensity", 1, 5)
    _check_int(truth.identity, "truth.identity", 0, None)
    _check_int(truth.style, "truth.style", 0, 1)
    _check_int(truth.domain, "truth.domain", 0, N_DOMAINS - 1)


def _check_int(value, name: str, lo: int, hi: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        want = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {want}, got {value}")


def blend_truth(weights: Mapping[str, float], *, intensity: int = 5, identity: int = 0,
                style: int = 0, domain: int = 0) -> ItemTruth:
    """An ItemTruth for a given mix of categories, e.g. ``{"happy": 0.5, "sad": 0.5}``.

    weights: category name -> non-negative weight (normalised to sum to 1).
    Valence and arousal are the weighted circumplex positions.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise TypeError("weights must be a non-empty mapping of category name to weight")
    dist = np.zeros(len(CATEGORIES))
    for name, w in weights.items():
        if name not in CATEGORIES:
            raise ValueError(f"weights has unknown category {name!r}; expected one of {CATEGORIES}")
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"weights[{name!r}] must be finite and >= 0, got {w}")
        dist[CATEGORIES.index(name)] += w
    if dist.sum() <= 0:
        raise ValueError("weights must not all be zero")
    dist /= dist.sum()
    va = dist @ np.array([CIRCUMPLEX[c] for c in CATEGORIES])
    truth = ItemTruth(dist=dist, valence=float(va[0]), arousal=float(va[1]), intensity=intensity,
                      identity=identity, style=style, domain=domain)
    _check_truth(truth)
    return truth


def default_sheet_truths() -> list[list[ItemTruth]]:
    """Rows for the default contact sheet, four faces each: every pure category at intensity 5
    across identities 0-3, then 50/50 blends, glasses, the second domain and an intensity ramp."""
    ids = range(4)
    rows = [[blend_truth({c: 1.0}, identity=i) for i in ids] for c in CATEGORIES]
    blends = [("happy", "sad"), ("fearful", "surprised"), ("angry", "disgusted"),
              ("neutral", "happy")]
    rows.append([blend_truth({a: 0.5, b: 0.5}, identity=i)
                 for i, (a, b) in zip(ids, blends, strict=True)])
    rows.append([blend_truth({c: 1.0}, identity=i, style=1)
                 for i, c in zip(ids, ("happy", "angry", "surprised", "sad"), strict=True)])
    rows.append([blend_truth({c: 1.0}, identity=i, domain=1)
                 for i, c in zip(ids, ("fearful", "happy", "disgusted", "neutral"), strict=True)])
    rows.append([blend_truth({"happy": 1.0}, intensity=k) for k in (1, 2, 4, 5)])
    return rows


def contact_sheet(rows: Sequence[Sequence[ItemTruth]] | None = None, *, seed: int = 0,
                  pad: int = 2, upscale: int = 1) -> np.ndarray:
    """Faces laid out in a grid, one row per inner sequence (default: ``default_sheet_truths()``).

    Each face gets its own rng from ``seed`` and its position. Returns a uint8 array of shape
    (n_rows·(64+pad)+pad, n_cols·(64+pad)+pad) times ``upscale`` (nearest-neighbour).
    """
    rows = default_sheet_truths() if rows is None else rows
    if not rows or not all(len(r) > 0 for r in rows):
        raise ValueError("rows must be a non-empty sequence of non-empty sequences of ItemTruth")
    _check_int(pad, "pad", 0, None)
    _check_int(upscale, "upscale", 1, None)
    n_cols = max(len(r) for r in rows)
    step = IMAGE_SIZE + pad
    sheet = np.full((len(rows) * step + pad, n_cols * step + pad), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, truth in enumerate(row):
            face = render_face(truth, np.random.default_rng([seed, i, j]))
            sheet[pad + i * step: pad + i * step + IMAGE_SIZE,
                  pad + j * step: pad + j * step + IMAGE_SIZE] = face
    return np.kron(sheet, np.ones((upscale, upscale), dtype=np.uint8)) if upscale > 1 else sheet
