"""Printout images from files, PIL images and arrays, with a pixel budget checked before decoding (issue 11).

``read_image`` gives (H, W, 3) float32 RGB in [0, 1] for the digitiser; ``image_tensor`` gives a (3, H, W)
float tensor letterboxed (or stretched) to a model's input size, for image encoders (issue 14). A file's size
is read from its header (Pillow opens lazily) and refused before any pixel is decoded when it exceeds
``max_pixels``, so a 110 KB PNG of 9500 x 9500 px costs nothing and a decompression bomb never raises
Pillow's own ``DecompressionBombError``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ecgalign.data.errors import InputError

MAX_PIXELS = 40_000_000  # 300 dpi A3 landscape is 4960 x 3508 = 17.4 MP; a phone photo 12-48 MP
MIN_SIDE = 64
INK_QUANTILE = 0.999  # a page's ink level: this quantile of its darkness (traces are ~1-5 % of a page's pixels)
MIN_INK_LEVEL = 0.25  # a page with nothing darker than this is taken as blank, not stretched up to full ink
INK_SAMPLE = 250_000  # pixels (a regular subsample) the ink level is estimated from


class ImageError(InputError):
    """An image input is unreadable, too large, too small or of an unsupported shape or pixel type."""


def _check_size(width: int, height: int, name: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width} x {height} px ({width * height / 1e6:.1f} MP) is over the pixel budget of "
            f"{max_pixels / 1e6:.0f} MP (raise max_pixels to read it)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: {width} x {height} px is too small for an ECG printout (min {MIN_SIDE} px a side)")


def _open_file(path: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own budget decides
            with Image.open(path) as im:  # reads the header only
                _check_size(im.width, im.height, str(path), max_pixels)
                im.load()
                return np.asarray(im.convert("RGB"))
    except ImageError:
        raise
    except Image.DecompressionBombError as e:  # raised by open() above 2 x Pillow's limit, far over ours
        raise ImageError(f"{path}: over the pixel budget of {max_pixels / 1e6:.0f} MP ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: not an image file Pillow can read ({type(e).__name__}: {e})") from None


def read_image(image, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from a path (PNG, JPEG, anything Pillow reads), a PIL image, a numpy
    array ((H, W), (H, W, 3|4), uint8 or float in [0, 1]) or a torch tensor ((3, H, W) as the renderer gives,
    or (H, W)). Raises ImageError naming the input for anything else, or above ``max_pixels``."""
    if isinstance(image, (str, Path)):
        name = name or str(image)
        image = _open_file(Path(image), max_pixels)
    name = name or "image"
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL image (already decoded by its owner)
        _check_size(image.size[0], image.size[1], name, max_pixels)
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        image = (t.permute(1, 2, 0) if t.ndim == 3 else t).numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    _check_size(arr.shape[1], arr.shape[0], name, max_pixels)
    arr = arr[..., :3]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(arr.dtype, np.floating):
        with np.errstate(over="ignore"):
            out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ImageError(f"{name}: pixel values contain NaN or infinity")
        return np.clip(out, 0.0, 1.0)
    raise ImageError(f"{name}: unsupported pixel type {arr.dtype} (uint8, or float in [0, 1])")


def image_tensor(
    image,
    size: tuple[int, int],
    *,
    fit: str = "letterbox",
    fill: float = 1.0,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    ink: bool = False,
) -> torch.Tensor:
    """One printout as a (3, H, W) float32 tensor in [0, 1] of ``size`` = (H, W), for an image encoder.

    ``fit="letterbox"`` keeps the aspect ratio (antialiased bilinear resize to fit, the rest ``fill``: white
    paper); ``"resize"`` stretches to (H, W). ``ink=True``: the page's ink map instead (``ink_images``; for
    models trained with ``image.ink``). Inputs as ``read_image`` (path, PIL, array, tensor)."""
    x = torch.from_numpy(read_image(image, name=name, max_pixels=max_pixels)).permute(2, 0, 1)[None]  # (1, 3, h0, w0)
    if ink:
        return ink_images(x, size, fit=fit)[0]
    return fit_images(x, size, fit=fit, fill=fill)[0]


def _check_fit(x: torch.Tensor, size: tuple[int, int], fit: str) -> tuple[int, int]:
    h, w = (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"size must be (H, W) with positive sides, got {size}")
    if fit not in ("letterbox", "resize"):
        raise ValueError(f"fit must be 'letterbox' or 'resize', got {fit!r}")
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    return h, w


def _letterbox_size(h0: int, w0: int, h: int, w: int) -> tuple[int, int]:
    scale = min(h / h0, w / w0)
    return max(1, min(h, round(h0 * scale))), max(1, min(w, round(w0 * scale)))


def _darkness(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) darkness ``1 - max(R, G, B)`` of pages (B, 3, H, W): an elementwise maximum of the channel
    planes, in place on one new plane (faster than ``amax`` over the channel axis on print-size pages)."""
    x = x.float()
    m = x[:, 0].clone()
    for c in range(1, x.shape[1]):
        torch.maximum(m, x[:, c], out=m)
    return m.neg_().add_(1.0).unsqueeze(1)


def _ink_level(dark: torch.Tensor) -> torch.Tensor:
    h0, w0 = dark.shape[-2:]
    step = max(1, math.ceil(math.sqrt(h0 * w0 / INK_SAMPLE)))
    if step > 1:
        dark = torch.nn.functional.max_pool2d(dark, step, step, ceil_mode=True)
    return _upper_quantile(dark.flatten(1), INK_QUANTILE).clamp_min(MIN_INK_LEVEL)


def _upper_quantile(v: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile(v, q, dim=1)`` (linear interpolation, the same float32 arithmetic, bit-identical) for a
    high ``q`` from the top ``(1 - q)`` share of each row (``topk``) instead of a full sort: about 15x faster on
    the 250k values of a page."""
    n = v.shape[1]
    rank = torch.tensor(q, dtype=v.dtype) * (n - 1)
    lo, hi = int(rank.floor()), int(rank.ceil())
    top = torch.topk(v, n - lo, dim=1).values  # descending: ascending index i is at n - 1 - i
    return torch.lerp(top[:, n - 1 - lo], top[:, n - 1 - hi], float(rank - rank.floor()))  # a float: any device


def ink_levels(x: torch.Tensor) -> torch.Tensor:
    """(B,) each page's ink level: the ``INK_QUANTILE`` quantile of its darkness ``1 - max(R, G, B)``, max-pooled
    in square blocks to at most about ``INK_SAMPLE`` values (so a one-pixel trace is never skipped), floored at
    ``MIN_INK_LEVEL``."""
    return _ink_level(_darkness(x))


def ink_images(x: torch.Tensor, size: tuple[int, int], *, fit: str = "letterbox") -> torch.Tensor:
    """Pages (B, 3, h0, w0) float in [0, 1] as ink maps (B, 3, H, W) of ``size``: black ink on white, the same in
    every channel. A pixel's darkness is ``1 - max(R, G, B)``: black or grey ink is dark, white paper and
    saturated colours (red / pink / green / blue grids, tinted paper) are not. Each page's darkness is
    stretched between half its ink level (``ink_levels``) and the level itself, which keeps the traces, text and
    frame of pages printed dark or faint alike and drops the paler grey grid lines, and is then shrunk by max
    pooling, so a trace one pixel wide at print resolution stays dark at the encoder's size instead of being
    averaged into the paper as an antialiased resize does. ``letterbox`` keeps the aspect ratio on blank
    paper; ``resize`` stretches. The same map for a page drawn by any generator, at any dpi (issue 14)."""
    h, w = _check_fit(x, size, fit)
    dark = _darkness(x)
    half = _ink_level(dark).view(-1, 1, 1, 1) / 2
    m = dark.sub_(half).div_(half).clamp_(0, 1)
    h0, w0 = m.shape[-2:]
    if (h0, w0) != (h, w):
        if fit == "resize":
            m = torch.nn.functional.adaptive_max_pool2d(m, (h, w))
        else:
            nh, nw = _letterbox_size(h0, w0, h, w)
            top, left = (h - nh) // 2, (w - nw) // 2
            m = torch.nn.functional.pad(torch.nn.functional.adaptive_max_pool2d(m, (nh, nw)),
                                        (left, w - nw - left, top, h - nh - top))
    return (1.0 - m).expand(-1, 3, -1, -1).contiguous()


def fit_images(x: torch.Tensor, size: tuple[int, int], *, fit: str = "letterbox", fill: float = 1.0) -> torch.Tensor:
    """A batch of pages (B, 3, h0, w0) float in [0, 1] resized to (B, 3, H, W) exactly as ``image_tensor``
    resizes one image file (antialiased bilinear; ``letterbox`` keeps the aspect ratio on ``fill`` paper), so
    pages drawn at print resolution in training reach the encoder as a scanned file would (issue 14)."""
    h, w = _check_fit(x, size, fit)
    h0, w0 = x.shape[-2:]
    if (h0, w0) == (h, w):
        return x
    if fit == "resize":
        return torch.nn.functional.interpolate(x, (h, w), mode="bilinear", antialias=True, align_corners=False)
    nh, nw = _letterbox_size(h0, w0, h, w)
    y = torch.nn.functional.interpolate(x, (nh, nw), mode="bilinear", antialias=True, align_corners=False)
    out = torch.full((x.shape[0], x.shape[1], h, w), float(fill), dtype=x.dtype, device=x.device)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[:, :, top : top + nh, left : left + nw] = y.clamp(0, 1)
    return out
