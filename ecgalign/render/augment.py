"""Printout augmentations in torch (batched, CPU or GPU), seeded per image with a ``torch.Generator``.

ECG-Scan (seeds/000, appendix B.2) applies "geometric perturbations, noise and artifact injection, color and
contrast variations, and grid style changes" while rendering on the fly. Every augmentation here has a
strength (0 = off) and a probability per image:

=============  ====================================================================  =========================
field          strength means                                                        updates ground truth
=============  ====================================================================  =========================
rotation       max |angle| in degrees                                                yes (homography)
perspective    max corner shift, fraction of the shorter image side                  yes (homography)
crop_scale     zoom in [1 - s/2, 1 + s] and shift up to s/2 of the size              yes (homography)
blur           max Gaussian sigma in mm of paper                                     n/a (photometric)
jpeg           0..1: quality down to 100 - 90 * s (8x8 DCT quantisation, 4:2:0 chroma)  n/a
noise          max sensor-noise std in grey levels (0-255)                           n/a
illumination   max darkening of an uneven (vignette x gradient) light field          n/a
creases        max shading depth of 1-3 straight folds (dark line, light flank)      n/a
colour         max relative brightness / contrast / per-channel gain shift           n/a
photocopy      blend towards a thresholded grey photocopy look                       n/a
grid_colour    blend of the grid colour towards a random hue (and its intensity)     n/a
handwriting    max number of random smooth pen strokes                               n/a (not part of the ECG)
=============  ====================================================================  =========================

Geometric augmentations compose one page -> image homography per image; the renderer samples the grid through
it and draws traces, text and strokes at their mapped positions, so the ground truth is exact by
construction. Colour, contrast and grid-colour changes are affine per channel and act on the palette before
compositing (identical to transforming the pixels, at no per-pixel cost).

JPEG is approximated without a codec: RGB -> YCbCr, 2x2 chroma averaging, 8x8 DCT-II per block, quantisation
with the IJG (libjpeg) tables scaled by quality, inverse; no entropy coding (lossless, so irrelevant).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

AUG_NAMES = (
    "rotation",
    "perspective",
    "crop_scale",
    "blur",
    "jpeg",
    "noise",
    "illumination",
    "creases",
    "colour",
    "photocopy",
    "grid_colour",
    "handwriting",
)
GEOMETRIC = ("rotation", "perspective", "crop_scale")
N_UNIFORMS = 160
MAX_STROKES = 8
_STROKE_BASE = 96  # uniforms [96, 96 + 8 * 8) describe pen strokes


@dataclass(frozen=True)
class Augment:
    """Strength of each augmentation (0 = off) and its probability per image (``prob``; default 1)."""

    rotation: float = 0.0
    perspective: float = 0.0
    crop_scale: float = 0.0
    blur: float = 0.0
    jpeg: float = 0.0
    noise: float = 0.0
    illumination: float = 0.0
    creases: float = 0.0
    colour: float = 0.0
    photocopy: float = 0.0
    grid_colour: float = 0.0
    handwriting: float = 0.0
    prob: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        for name in AUG_NAMES:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"augmentation strength {name}={v!r} must be a finite number >= 0")
        unknown = set(self.prob) - set(AUG_NAMES)
        if unknown:
            raise ValueError(
                f"unknown augmentation(s) {sorted(unknown)} in prob; expected {', '.join(AUG_NAMES)}"
            )
        if self.jpeg > 1 or self.photocopy > 1 or self.grid_colour > 1:
            raise ValueError("jpeg, photocopy and grid_colour strengths are fractions in [0, 1]")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, n) > 0 and self.prob.get(n, 1.0) > 0 for n in AUG_NAMES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Augment:
        return cls(**d)


AUGMENT_PRESETS: dict[str, Augment] = {
    "none": Augment(),
    "light": Augment(rotation=1.0, crop_scale=0.03, noise=4.0, illumination=0.12, colour=0.05),
    "heavy": Augment(
        rotation=4.0,
        perspective=0.04,
        crop_scale=0.08,
        blur=0.15,
        jpeg=0.8,
        noise=12.0,
        illumination=0.35,
        creases=0.25,
        colour=0.15,
        photocopy=1.0,
        grid_colour=1.0,
        handwriting=4,
        prob={
            "blur": 0.5,
            "jpeg": 0.5,
            "creases": 0.5,
            "photocopy": 0.2,
            "grid_colour": 0.5,
            "handwriting": 0.6,
        },
    ),
    # every scanner/photo artefact, each on in about half the images (issue 14); with the page conventions
    # of ecgalign.render.wild.sample_wild_config this is the training distribution for foreign printouts
    "wild": Augment(
        rotation=5.0,
        perspective=0.05,
        crop_scale=0.08,
        blur=0.2,
        jpeg=0.9,
        noise=15.0,
        illumination=0.45,
        creases=0.35,
        colour=0.2,
        photocopy=1.0,
        grid_colour=1.0,
        handwriting=4,
        prob={
            "rotation": 0.7,
            "perspective": 0.5,
            "crop_scale": 0.5,
            "blur": 0.5,
            "jpeg": 0.5,
            "noise": 0.6,
            "illumination": 0.5,
            "creases": 0.5,
            "colour": 0.6,
            "photocopy": 0.15,
            "grid_colour": 0.5,
            "handwriting": 0.3,
        },
    ),
}


def resolve_augment(augment: str | Augment | None) -> Augment:
    if augment is None:
        return AUGMENT_PRESETS["none"]
    if isinstance(augment, Augment):
        return augment
    if augment not in AUGMENT_PRESETS:
        raise ValueError(
            f"unknown augmentation preset {augment!r}; expected one of {', '.join(AUGMENT_PRESETS)}"
        )
    return AUGMENT_PRESETS[augment]


def image_uniforms(seeds: list[int]) -> torch.Tensor:
    """(B, N_UNIFORMS) float64 uniforms from one ``torch.Generator`` per image seed (so batching does not
    change them)."""
    out = torch.empty(len(seeds), N_UNIFORMS, dtype=torch.float64)
    g = torch.Generator()
    for i, s in enumerate(seeds):
        g.manual_seed(int(s))
        out[i] = torch.rand(N_UNIFORMS, generator=g, dtype=torch.float64)
    return out


@dataclass
class AugParams:
    """Per-image parameters sampled from the uniforms (CPU tensors; B images)."""

    on: dict[str, torch.Tensor]  # name -> (B,) bool
    page_to_image: torch.Tensor  # (B, 3, 3) float64
    blur_sigma_mm: torch.Tensor  # (B,)
    jpeg_quality: torch.Tensor  # (B,)
    noise_std: torch.Tensor  # (B,)
    noise_offset: torch.Tensor  # (B, 2) long
    illumination: torch.Tensor  # (B, 6): cx, cy, sx, sy, depth, ramp
    creases: torch.Tensor  # (B, 3, 4): position, angle, width, depth (depth 0: absent)
    colour: torch.Tensor  # (B, 4): brightness, contrast, red gain, blue gain
    photocopy: torch.Tensor  # (B, 3): threshold, softness, blend
    grid_colour: torch.Tensor  # (B, 4): R, G, B, blend
    strokes: torch.Tensor  # (B, MAX_STROKES, 8); column 7 is 1 for a drawn stroke

    def describe(self, i: int) -> dict:
        """The parameters that were applied to image ``i`` (JSON-ready)."""
        on = {n: bool(self.on[n][i]) for n in AUG_NAMES}
        d: dict = {"applied": [n for n in AUG_NAMES if on[n]]}
        if on["blur"]:
            d["blur_sigma_mm"] = float(self.blur_sigma_mm[i])
        if on["jpeg"]:
            d["jpeg_quality"] = float(self.jpeg_quality[i])
        if on["noise"]:
            d["noise_std"] = float(self.noise_std[i])
        if on["handwriting"]:
            d["strokes"] = int(self.strokes[i, :, 7].sum())
        return d


def _homography_from_corners(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """(B, 4, 2) -> (B, 3, 3) with dst ~ H @ src (direct linear transform, h33 = 1)."""
    b = src.shape[0]
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], -1)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (B, 8, 8)
    rhs = torch.cat([u, v], 1)
    h = torch.linalg.solve(a, rhs)
    return torch.cat([h, torch.ones(b, 1, dtype=h.dtype)], 1).reshape(b, 3, 3)


def sample_params(aug: Augment, seeds: list[int], height: int, width: int) -> AugParams:
    """Draw every image's parameters from its own generator; slots are fixed, so switching one augmentation
    on or off leaves the others' draws unchanged."""
    u = image_uniforms(seeds)
    b = u.shape[0]
    flags = {}
    for k, name in enumerate(AUG_NAMES):
        flags[name] = (u[:, k] < aug.prob.get(name, 1.0)) & (getattr(aug, name) > 0)
    s = {
        n: torch.where(flags[n], torch.full((b,), float(getattr(aug, n)), dtype=torch.float64), 0.0)
        for n in AUG_NAMES
    }
    sym = lambda col: 2 * u[:, col] - 1

    cx, cy = (width - 1) / 2, (height - 1) / 2
    angle = torch.deg2rad(s["rotation"] * sym(16))
    scale = 1 + s["crop_scale"] * torch.where(u[:, 17] < 0.5, -0.5 * u[:, 18], u[:, 18])
    shift_x = s["crop_scale"] / 2 * sym(19) * width / 2
    shift_y = s["crop_scale"] / 2 * sym(20) * height / 2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    affine = torch.zeros(b, 3, 3, dtype=torch.float64)
    affine[:, 0, 0], affine[:, 0, 1] = cos, -sin
    affine[:, 1, 0], affine[:, 1, 1] = sin, cos
    affine[:, 0, 2] = cx - cos * cx + sin * cy + shift_x
    affine[:, 1, 2] = cy - sin * cx - cos * cy + shift_y
    affine[:, 2, 2] = 1
    corners = torch.tensor(
        [[0.0, 0.0], [width - 1.0, 0.0], [width - 1.0, height - 1.0], [0.0, height - 1.0]],
        dtype=torch.float64,
    ).expand(b, 4, 2)
    jitter = (s["perspective"] * min(width, height))[:, None, None] * (2 * u[:, 21:29].reshape(b, 4, 2) - 1)
    persp = _homography_from_corners(corners, corners + jitter)
    page_to_image = persp @ affine

    strokes = u[:, _STROKE_BASE : _STROKE_BASE + MAX_STROKES * 8].reshape(b, MAX_STROKES, 8).clone()
    n_strokes = torch.ceil(s["handwriting"] * u[:, 29])
    strokes[:, :, 7] = (torch.arange(MAX_STROKES)[None, :] < n_strokes[:, None]).double()

    hue = u[:, 40]
    rgb = (
        torch.tensor(
            [
                colorsys.hsv_to_rgb(float(h), 0.5 + 0.5 * float(v), 0.45 + 0.5 * float(w))
                for h, v, w in zip(hue, u[:, 41], u[:, 42])
            ],
            dtype=torch.float64,
        ).reshape(b, 3)
        * 255
    )
    n_creases = torch.ceil(3 * u[:, 43])
    crease = u[:, 44:56].reshape(b, 3, 4).clone()
    crease[..., 3] = crease[..., 3] * s["creases"][:, None] * (torch.arange(3)[None] < n_creases[:, None])

    return AugParams(
        on=flags,
        page_to_image=page_to_image,
        blur_sigma_mm=s["blur"] * (0.3 + 0.7 * u[:, 30]),
        jpeg_quality=(100 - 90 * s["jpeg"] * (0.3 + 0.7 * u[:, 31])).clamp(5, 100),
        noise_std=s["noise"] * (0.3 + 0.7 * u[:, 32]),
        noise_offset=(u[:, 33:35] * 32).long(),
        illumination=torch.stack(
            [
                u[:, 35] * width,
                u[:, 36] * height,
                (0.6 + u[:, 37]) * width,
                (0.6 + u[:, 38]) * height,
                s["illumination"] * (0.4 + 0.6 * u[:, 39]),
                s["illumination"] * sym(56) * 0.5,
            ],
            1,
        ),
        creases=crease,
        colour=torch.stack(
            [
                s["colour"] * sym(57) * 40,
                1 + s["colour"] * sym(58),
                1 + s["colour"] * sym(59) * 0.5,
                1 + s["colour"] * sym(60) * 0.5,
            ],
            1,
        ),
        photocopy=torch.stack([0.55 + 0.3 * u[:, 61], 0.02 + 0.08 * u[:, 62], s["photocopy"]], 1),
        grid_colour=torch.cat([rgb, (s["grid_colour"] * (0.5 + 0.5 * u[:, 63]))[:, None]], 1),
        strokes=strokes,
    )


def palette_transform(colours: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Colour / contrast shift of palette entries (B, K, 3) in 0-255: contrast about mid-grey, brightness, and
    red / blue gains (a warm or cool cast)."""
    bright, contrast, red, blue = (params[:, i, None, None] for i in range(4))
    gains = torch.cat([red, torch.ones_like(red), blue], -1)
    return ((colours - 128) * contrast + 128 + bright) * gains


def stroke_polylines(
    params: AugParams, index: torch.Tensor, height: int, width: int, px_per_mm: float, n_points: int = 48
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pen strokes in page pixels: (b, MAX_STROKES, n_points, 2) points (NaN for undrawn strokes), pen width
    in px (b, MAX_STROKES), pen colour index (b, MAX_STROKES)."""
    st = params.strokes[index]  # (b, S, 8)
    t = torch.linspace(0, 1, n_points, dtype=torch.float64)
    cx, cy = st[..., 0:1] * width, st[..., 1:2] * height
    length = (15 + 60 * st[..., 2:3]) * px_per_mm
    ang = math.pi * st[..., 3:4]
    amp = (1 + 8 * st[..., 4:5]) * px_per_mm
    freq = 0.5 + 3 * st[..., 5:6]
    along = (t - 0.5) * length
    across = amp * torch.sin(2 * math.pi * freq * t + 6.28 * st[..., 6:7]) + 0.3 * amp * torch.sin(
        7.1 * t * freq
    )
    x = cx + along * torch.cos(ang) - across * torch.sin(ang)
    y = cy + along * torch.sin(ang) + across * torch.cos(ang)
    xy = torch.stack([x, y], -1)
    xy[st[..., 7] == 0] = float("nan")
    widths = (0.3 + 0.4 * st[..., 4]) * px_per_mm
    pens = (st[..., 5] * 3).long().clamp(max=2)
    return xy, widths, pens


PEN_COLOURS = torch.tensor([[25.0, 45.0, 160.0], [20.0, 20.0, 25.0], [180.0, 30.0, 40.0]])


def photocopy(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Grey, soft-thresholded look of a photocopy, blended in by ``params[:, 2]`` (x: (b, 3, H, W), 0-255)."""
    thr, soft, blend = (params[:, i].float().to(x.device)[:, None, None, None] for i in range(3))
    lum = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) / 255
    grey = torch.sigmoid((lum - thr) / soft) * 255
    return torch.lerp(x, grey.expand_as(x), blend)


def gaussian_blur(x: torch.Tensor, sigma_px: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per image, as shifted weighted sums (CPU convolutions with one
    input channel are slow; this is the same on every device). x: (b, C, H, W) float."""
    radius = max(1, math.ceil(3 * float(sigma_px.max())))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    s = sigma_px.float().to(x.device).clamp(min=1e-3)[:, None]
    w = torch.exp(-0.5 * (taps[None, :] / s) ** 2)
    w = w / w.sum(1, keepdim=True)  # (b, K)
    for dim in (3, 2):
        pad = (radius, radius, 0, 0) if dim == 3 else (0, 0, radius, radius)
        xp = F.pad(x, pad, mode="replicate")
        n = x.shape[dim]
        out = torch.zeros_like(x)
        for k in range(taps.shape[0]):
            out.add_(xp.narrow(dim, k, n) * w[:, k, None, None, None])
        x = out
    return x


_Q_LUMA = [
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
]
_Q_CHROMA = [
    17,
    18,
    24,
    47,
    99,
    99,
    99,
    99,
    18,
    21,
    26,
    66,
    99,
    99,
    99,
    99,
    24,
    26,
    56,
    99,
    99,
    99,
    99,
    99,
    47,
    66,
    99,
    99,
    99,
    99,
    99,
    99,
] + [99] * 32


def _dct_matrix(device: torch.device) -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    m = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.float().to(device)


def jpeg_like(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG compression artefacts without a codec (see the module docstring). x: (b, 3, H, W), 0-255."""
    b, _, h, w = x.shape
    dev = x.device
    q = quality.float().to(dev).clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q) / 100  # IJG quality scaling
    tables = torch.stack([torch.tensor(_Q_LUMA), torch.tensor(_Q_CHROMA)]).float().to(dev)  # (2, 64)
    qt = (tables[None] * scale[:, None, None]).round().clamp(1, 255).reshape(b, 2, 8, 8)
    ph, pw = (-h) % 16, (-w) % 16
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
    m = torch.tensor(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], device=dev
    )
    ycc = torch.einsum("ij,bjhw->bihw", m, xp)
    ycc[:, 0] -= 128
    chroma = F.avg_pool2d(ycc[:, 1:], 2)
    d = _dct_matrix(dev)

    def roundtrip(p: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = p.shape
        blocks = p.reshape(n, c, hh // 8, 8, ww // 8, 8).permute(0, 1, 2, 4, 3, 5)
        coef = d @ blocks @ d.T
        t = table[:, None, None, None]
        coef = torch.round(coef / t) * t
        return (d.T @ coef @ d).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh, ww)

    y = roundtrip(ycc[:, :1], qt[:, 0])
    cc = roundtrip(chroma, qt[:, 1])
    cc = F.interpolate(cc, scale_factor=2, mode="nearest")
    ycc = torch.cat([y + 128, cc], 1)
    inv = torch.linalg.inv(m)
    rgb = torch.einsum("ij,bjhw->bihw", inv, ycc)
    return rgb[:, :, :h, :w]
