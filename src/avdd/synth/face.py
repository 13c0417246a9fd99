"""Cartoon talking faces: an identity's look, head motion, blinks, and a mouth driven by speech.

A face is drawn with anti-aliased ellipses in numpy. Everything that moves rigidly with the
head (hair, face, ears, eyes, brows, nose, beard, glasses, shoulders) is drawn once into a
padded RGBA layer and shifted with quarter-pixel (bilinear) accuracy per frame over a static
background; eyelids and the mouth are drawn per frame at the shifted positions. The mouth
opening follows the speech amplitude envelope (frame RMS at 25 Hz, smoothed), so real clips
are audio-visually synchronised.

Geometry is stored as fractions of the frame size, so one identity renders at any size.
Frames are returned as float32 without sensor noise (:func:`avdd.synth.video.add_grain` adds
it, :func:`avdd.synth.video.quantise` makes uint8 frames), so manipulations can edit float
frames before the "camera" records them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Appearance", "Mover", "Render", "sample_appearance", "sample_mover", "mouth_opening", "render",
           "draw_mouth"]

SKIN = {  # base RGB per FAVC ethnicity folder (jittered per identity)
    "African": (112, 74, 52),
    "Asian_East": (226, 190, 152),
    "Asian_South": (170, 118, 84),
    "Caucasian_American": (232, 186, 160),
    "Caucasian_European": (238, 200, 178),
}
HAIR = ((25, 20, 18), (60, 40, 25), (110, 75, 40), (200, 165, 100), (150, 70, 35), (140, 140, 140))
_PAD = 0.08  # head layer padding (fraction of frame size): the largest head offset
_SUB = 4  # head positions are rounded to 1 / _SUB pixel
_OPEN_DB = (-42.0, -16.0)  # frame RMS (dBFS) mapped to mouth opening 0 and 1


@dataclass(frozen=True)
class Appearance:
    """One identity's look. Lengths are fractions of the frame size (face_* of its width).

    Attributes:
        skin, hair, lip_colour, iris, shirt: RGB colours (0-255).
        background: top and bottom RGB of the static background gradient.
        centre: face centre (x, y) as fractions of frame width and height.
        face_rx, face_ry: face ellipse half-axes (fractions of frame size).
        eye_dx: horizontal eye offset from the centre (fraction of face_rx).
        eye_y: eye height above the centre (fraction of face_ry).
        eye_r: eye half-width (fraction of face_rx).
        mouth_y: mouth centre below the face centre (fraction of face_ry).
        mouth_w: mouth half-width (fraction of face_rx).
        lip: lip thickness (fraction of face_ry).
        open_max: inner mouth height at full opening (fraction of face_ry).
        hair_style: 0 short, 1 long, 2 very short.
        beard, glasses: optional features.
    """

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    lip_colour: tuple[float, float, float]
    iris: tuple[float, float, float]
    shirt: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    centre: tuple[float, float] = (0.5, 0.48)
    face_rx: float = 0.25
    face_ry: float = 0.33
    eye_dx: float = 0.42
    eye_y: float = 0.22
    eye_r: float = 0.18
    mouth_y: float = 0.55
    mouth_w: float = 0.36
    lip: float = 0.07
    open_max: float = 0.24
    hair_style: int = 0
    beard: bool = False
    glasses: bool = False


def _jitter(rng, colour, amount):
    return tuple(float(np.clip(c + rng.normal(0, amount), 0, 255)) for c in colour)


def sample_appearance(rng: np.random.Generator, *, ethnicity: str | None = None,
                      gender: str | None = None) -> Appearance:
    """Draw a random identity (skin from :data:`SKIN` for ``ethnicity``; beard only for men)."""
    ethnicity = ethnicity or list(SKIN)[rng.integers(len(SKIN))]
    gender = gender or ("men", "women")[rng.integers(2)]
    skin = _jitter(rng, SKIN[ethnicity], 10)
    hue = rng.uniform(60, 200, size=3)
    bg = tuple(float(v) for v in hue)
    return Appearance(
        skin=skin,
        hair=_jitter(rng, HAIR[rng.integers(len(HAIR))], 8),
        lip_colour=_jitter(rng, (skin[0] * 0.8 + 30, skin[1] * 0.55, skin[2] * 0.55), 6),
        iris=_jitter(rng, ((60, 40, 25), (70, 110, 150), (80, 110, 70))[rng.integers(3)], 10),
        shirt=tuple(float(v) for v in rng.uniform(20, 230, size=3)),
        background=(bg, _jitter(rng, tuple(0.7 * v for v in bg), 12)),
        # Loose crops: the face is seldom at the centre of the frame, so that a region's
        # position says something (Fig. 4's frame-centre baseline must not be right by
        # construction); the whole face stays inside the frame.
        centre=(float(rng.uniform(0.32, 0.68)), float(rng.uniform(0.42, 0.54))),
        face_rx=float(rng.uniform(0.22, 0.27)),
        face_ry=float(rng.uniform(0.29, 0.35)),
        eye_dx=float(rng.uniform(0.36, 0.46)),
        eye_y=float(rng.uniform(0.15, 0.27)),
        eye_r=float(rng.uniform(0.15, 0.21)),
        mouth_y=float(rng.uniform(0.5, 0.6)),
        mouth_w=float(rng.uniform(0.3, 0.42)),
        lip=float(rng.uniform(0.05, 0.09)),
        open_max=float(rng.uniform(0.18, 0.28)),
        hair_style=int(rng.integers(3)) if gender == "men" else int(rng.choice([0, 1, 1])),
        beard=bool(gender == "men" and rng.random() < 0.3),
        glasses=bool(rng.random() < 0.2),
    )


@dataclass(frozen=True)
class Mover:
    """Head motion (sums of slow sinusoids) and blinks, as functions of time in seconds.

    Attributes:
        freqs, phases, amps: ``(2, 3)`` per axis (x, y) and component: Hz, radians, and
            amplitude as a fraction of the frame size.
        blinks: blink start times (s).
    """

    freqs: tuple
    phases: tuple
    amps: tuple
    blinks: tuple[float, ...]

    def offsets(self, times: np.ndarray) -> np.ndarray:
        """``(T, 2)`` head offsets (x, y) as fractions of the frame size at ``times`` (s)."""
        t = np.asarray(times, np.float64)[:, None, None]
        phase = 2 * np.pi * np.asarray(self.freqs) * t + np.asarray(self.phases)
        return (np.asarray(self.amps) * np.sin(phase)).sum(axis=2)

    def closure(self, times: np.ndarray) -> np.ndarray:
        """``(T,)`` eyelid closure in [0, 1] (a blink lasts ~0.2 s)."""
        times = np.asarray(times, np.float64)
        out = np.zeros(len(times))
        for start in self.blinks:
            phase = (times - start) / 0.2
            inside = (phase >= 0) & (phase < 1)
            out = np.maximum(out, np.where(inside, np.sin(np.pi * np.clip(phase, 0, 1)), 0))
        return out


def sample_mover(rng: np.random.Generator, span: float = 12.0) -> Mover:
    """Random head motion (at most ~4 % of the frame) and blinks every ~4 s over [-1, span] s."""
    amps = rng.uniform(0.002, 0.011, size=(2, 3))
    blinks, t = [], -1.0 + rng.exponential(2.0)
    while t < span:
        blinks.append(float(t))
        t += 0.4 + rng.exponential(3.5)
    return Mover(
        freqs=tuple(map(tuple, rng.uniform(0.08, 0.7, size=(2, 3)))),
        phases=tuple(map(tuple, rng.uniform(0, 2 * np.pi, size=(2, 3)))),
        amps=tuple(map(tuple, amps)),
        blinks=tuple(blinks),
    )


def mouth_opening(audio: np.ndarray, n_frames: int, sample_rate: int = 16000,
                  fps: float = 25.0) -> np.ndarray:
    """Mouth opening per video frame from the speech envelope.

    Args:
        audio: ``(N,)`` samples in [-1, 1].
        n_frames: number of frames T; frame t covers samples [t, t + 1) / fps.

    Returns:
        ``(T,)`` opening in [0, 1]: frame RMS in dBFS mapped linearly from ``_OPEN_DB``,
        then smoothed with a 3-tap [1, 2, 1] / 4 filter (lips move less abruptly than sound).
    """
    hop = int(round(sample_rate / fps))
    padded = np.zeros(n_frames * hop, np.float32)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    rms = np.sqrt(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1) + 1e-12)
    level = (20 * np.log10(rms) - _OPEN_DB[0]) / (_OPEN_DB[1] - _OPEN_DB[0])
    level = np.clip(level, 0.0, 1.0)
    smooth = np.convolve(np.pad(level, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return smooth.astype(np.float32)


def _ellipse_alpha(xx, yy, cx, cy, rx, ry):
    """Anti-aliased coverage of an ellipse on pixel-centre grids ``xx``, ``yy`` (~1 px edge)."""
    d = np.sqrt(((xx - cx) / max(rx, 1e-3)) ** 2 + ((yy - cy) / max(ry, 1e-3)) ** 2)
    return np.clip((1.0 - d) * min(rx, ry) + 0.5, 0.0, 1.0)


def _paint(img, cx, cy, rx, ry, colour, opacity=1.0, mask_scale=None):
    """Blend an ellipse of ``colour`` into ``img (H, W, C)`` in place, touching only its box.

    On an RGBA image (premultiplied), an RGB colour is painted opaque: ``img += a * (colour,
    1) - a * img`` is the premultiplied "over" operator. Returns the coverage patch.
    """
    h, w = img.shape[:2]
    x0, x1 = max(int(cx - rx - 2), 0), min(int(cx + rx + 3), w)
    y0, y1 = max(int(cy - ry - 2), 0), min(int(cy + ry + 3), h)
    if x0 >= x1 or y0 >= y1:
        return None
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5  # broadcast grids: cheaper than mgrid
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    a = _ellipse_alpha(xx, yy, cx, cy, rx, ry) * opacity
    if mask_scale is not None:
        a = a * mask_scale(xx, yy)
    colour = np.asarray(colour, np.float32)
    if img.shape[-1] == 4 and colour.shape[0] == 3:
        colour = np.append(colour, np.float32(1.0))
    img[y0:y1, x0:x1] += a[..., None] * (colour - img[y0:y1, x0:x1])
    return a


def _geometry(app: Appearance, size: int):
    """Pixel geometry of a face centred at its rest position."""
    cx, cy = app.centre[0] * size, app.centre[1] * size
    rx, ry = app.face_rx * size, app.face_ry * size
    return cx, cy, rx, ry


def _head_layer(app: Appearance, size: int) -> np.ndarray:
    """``(S + 2P, S + 2P, 4)`` premultiplied RGBA of everything rigid with the head."""
    pad = int(np.ceil(_PAD * size))
    n = size + 2 * pad
    layer = np.zeros((n, n, 4), np.float32)
    cx, cy, rx, ry = _geometry(app, size)
    cx, cy = cx + pad, cy + pad
    _paint(layer, cx, cy + 1.55 * ry, 2.1 * rx, 0.75 * ry, app.shirt)  # shoulders
    if app.hair_style == 1:  # long hair behind the head
        _paint(layer, cx, cy + 0.25 * ry, 1.25 * rx, 1.2 * ry, app.hair)
    _paint(layer, cx, cy + 0.95 * ry, 0.45 * rx, 0.5 * ry, tuple(0.85 * c for c in app.skin))  # neck
    ear = tuple(0.92 * c for c in app.skin)
    for side in (-1, 1):
        _paint(layer, cx + side * 0.98 * rx, cy + 0.05 * ry, 0.16 * rx, 0.2 * ry, ear)
    _paint(layer, cx, cy, rx, ry, app.skin)
    # Shading: darker towards the face edge gives the face some volume.
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
    r2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    layer[..., :3] *= np.where(r2 < 1.2, 1.0 - 0.16 * np.clip(r2, 0, 1) ** 2, 1.0)[..., None]
    if app.beard:
        _paint(layer, cx, cy + 0.55 * ry, 0.8 * rx, 0.45 * ry, app.hair, opacity=0.85,
               mask_scale=lambda x, y: np.clip((y - (cy + 0.25 * ry)) / 3.0, 0, 1))
    hairline = cy - {0: 0.5, 1: 0.45, 2: 0.65}[app.hair_style] * ry
    _paint(layer, cx, cy - 0.3 * ry, 1.07 * rx, 0.82 * ry, app.hair,
           mask_scale=lambda x, y: np.clip((hairline - y) / 2.0 + 0.5, 0, 1))
    ey, edx, er = cy - app.eye_y * ry, app.eye_dx * rx, app.eye_r * rx
    for side in (-1, 1):
        ex = cx + side * edx
        _paint(layer, ex, ey - 1.1 * er, 1.1 * er, 0.22 * er + 0.6, tuple(0.6 * c for c in app.hair))  # brow
        _paint(layer, ex, ey, er, 0.6 * er, (245, 245, 240))
        _paint(layer, ex, ey, 0.5 * er, 0.5 * er, app.iris)
        _paint(layer, ex, ey, 0.22 * er, 0.22 * er, (15, 15, 15))
        if app.glasses:
            _paint(layer, ex, ey, 1.45 * er, 1.1 * er, (30, 30, 30),
                   mask_scale=lambda x, y, ex=ex: 1 - _ellipse_alpha(x, y, ex, ey, 1.3 * er, 0.95 * er))
    _paint(layer, cx, cy + 0.12 * ry, 0.12 * rx, 0.16 * ry, tuple(0.8 * c for c in app.skin))  # nose
    return layer  # premultiplied as drawn (see _paint): what bilinear shifting needs


def _background(app: Appearance, size: int) -> np.ndarray:
    top, bottom = (np.asarray(c, np.float32) for c in app.background)
    w = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - w) * top + w * bottom, (size, size, 3)).copy()


@dataclass(frozen=True, eq=False)
class Render:
    """Rendered frames and where the face is.

    Attributes:
        frames: ``(T, S, S, 3)`` float32 RGB in [0, 255], no sensor noise.
        face_box: ``(T, 4)`` face ellipse box (x0, y0, x1, y1) in pixels.
        mouth_centre: ``(T, 2)`` (x, y) pixels.
        face_centre: ``(T, 2)`` (x, y) pixels.
    """

    frames: np.ndarray
    face_box: np.ndarray
    mouth_centre: np.ndarray
    face_centre: np.ndarray


def _subpixel(layer: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """The layer sampled ``(fx, fy)`` pixels to the right and below (bilinear; one pixel
    smaller in each dimension)."""
    fx, fy = np.float32(fx), np.float32(fy)
    rows = layer[:, :-1] + fx * (layer[:, 1:] - layer[:, :-1])
    return rows[:-1] + fy * (rows[1:] - rows[:-1])


def render(app: Appearance, mover: Mover, opening: np.ndarray, times: np.ndarray,
           size: int = 128) -> Render:
    """Draw a talking face.

    Args:
        app: the identity.
        mover: head motion and blinks.
        opening: ``(T,)`` mouth opening in [0, 1] per frame.
        times: ``(T,)`` frame times in seconds (may start below 0 for prepended frames).
        size: frame size S in pixels (frames are S x S).
    """
    layer, bg = _head_layer(app, size), _background(app, size)
    pad = (layer.shape[0] - size) // 2
    cx, cy, rx, ry = _geometry(app, size)
    # Quarter-pixel head positions: 16 pre-shifted layers make per-frame shifting a slice.
    offsets = np.round(np.clip(mover.offsets(times) * size, -(pad - 1), pad - 1) * _SUB) / _SUB
    phases = {}
    closure = mover.closure(times)
    frames = np.empty((len(times), size, size, 3), np.float32)
    for t, (dx, dy) in enumerate(offsets):
        sx, sy = pad - dx, pad - dy
        x0, y0 = int(np.floor(sx)), int(np.floor(sy))
        key = (round((sx - x0) * _SUB), round((sy - y0) * _SUB))
        if key not in phases:
            shifted = _subpixel(layer, key[0] / _SUB, key[1] / _SUB)
            phases[key] = (shifted[..., :3].copy(), 1 - shifted[..., 3:])  # colour, background weight
        colour, weight = phases[key]
        frame = frames[t]
        np.multiply(bg, weight[y0 : y0 + size, x0 : x0 + size], out=frame)
        frame += colour[y0 : y0 + size, x0 : x0 + size]
        _draw_eyelids(frame, app, cx + dx, cy + dy, rx, ry, closure[t])
        draw_mouth(frame, app, cx + dx, cy + dy + app.mouth_y * ry, rx, ry, float(opening[t]))
    centre = np.stack([cx + offsets[:, 0], cy + offsets[:, 1]], axis=1)
    box = np.concatenate([centre - [rx, ry], centre + [rx, ry]], axis=1)
    mouth = centre + [0.0, app.mouth_y * ry]
    return Render(frames=frames, face_box=box, mouth_centre=mouth, face_centre=centre)


def _draw_eyelids(frame, app, cx, cy, rx, ry, closure):
    if closure <= 0.02:
        return
    er, ey = app.eye_r * rx, cy - app.eye_y * ry
    lid = tuple(0.88 * c for c in app.skin)
    for side in (-1, 1):
        ex = cx + side * app.eye_dx * rx
        edge = ey - 0.65 * er + closure * 1.3 * er  # the lid's lower edge moves down as it closes
        _paint(frame, ex, ey, 1.08 * er, 0.68 * er, lid,
               mask_scale=lambda x, y, e=edge: np.clip(e - y + 0.5, 0, 1))


def draw_mouth(frame: np.ndarray, app: Appearance, mx: float, my: float, rx: float, ry: float,
               opening: float) -> None:
    """Draw lips, mouth cavity and teeth for ``opening`` in [0, 1] at (mx, my) px, in place.

    ``frame (H, W, 3)`` float32 (or premultiplied RGBA); ``rx``, ``ry``: face half-axes (px).
    """
    inner = opening * app.open_max * ry  # cavity height (px)
    half_w = app.mouth_w * rx * (1 - 0.12 * opening)  # the mouth narrows as it opens
    _paint(frame, mx, my, half_w, inner / 2 + app.lip * ry, app.lip_colour)
    if inner < 0.8:  # closed: a dark line between the lips
        _paint(frame, mx, my, 0.85 * half_w, 0.55, tuple(0.45 * c for c in app.lip_colour))
        return
    ix, iy = 0.8 * half_w, inner / 2
    _paint(frame, mx, my, ix, iy, (60, 20, 25))
    teeth_y = my - iy * 0.55
    _paint(frame, mx, teeth_y, 0.62 * ix, 0.3 * iy + 0.3, (235, 232, 220),
           mask_scale=lambda x, y: _ellipse_alpha(x, y, mx, my, ix, iy))
