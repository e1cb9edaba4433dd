"""Ink maps (issue 14): ``ink_images`` keeps the colourless ink of a page (traces, text, frame) and drops the
grid and paper colour, stretches faint and dark printouts to the same ink, and shrinks by max pooling, so a
one-pixel trace at print resolution stays dark at an encoder's size where an antialiased resize fades it."""

from __future__ import annotations

import pytest
import torch

from ecgalign.render import fit_images, image_tensor, ink_images

GRIDS = {"red": (1.0, 0.55, 0.55), "pink": (1.0, 0.8, 0.85), "green": (0.5, 0.9, 0.5), "blue": (0.6, 0.7, 1.0),
         "grey": (0.75, 0.75, 0.75)}


def _page(h: int = 500, w: int = 640, grid=(1.0, 0.55, 0.55), paper=(1.0, 1.0, 1.0)) -> torch.Tensor:
    page = torch.tensor(paper).view(1, 3, 1, 1).repeat(1, 1, h, w)
    line = torch.tensor(grid).view(1, 3, 1, 1)
    page[:, :, ::10, :] = line
    page[:, :, :, ::10] = line
    return page


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_a_thin_trace_stays_dark_after_shrinking_and_the_grid_goes(grid):
    page = _page(grid=GRIDS[grid])
    page[:, :, 251, 100:540] = 0.0  # a one-pixel black trace at print resolution
    ink, plain = ink_images(page, (100, 128)), fit_images(page, (100, 128))  # 5x smaller
    assert ink.shape == (1, 3, 100, 128)
    assert torch.equal(ink[:, 0], ink[:, 1]) and torch.equal(ink[:, 0], ink[:, 2])
    assert ink[0, 0, 50, 21:107].max() == 0.0  # the whole trace, full ink
    assert plain[0, :, 49:52, 21:107].min() > 0.6  # the antialiased resize fades it into the paper
    ink[0, :, 50, 20:108] = 1.0
    assert ink.min() == 1.0  # nothing else: the grid is gone


def test_faint_and_dark_printouts_give_the_same_map_and_a_blank_page_stays_blank():
    dark, faint = _page(), _page(paper=(0.97, 0.95, 0.9))  # a faint scan on tinted paper
    dark[:, :, 250:253, 100:540] = 0.0
    faint[:, :, 250:253, 100:540] = 0.55
    assert torch.equal(ink_images(dark, (100, 128)), ink_images(faint, (100, 128)))
    blank = _page(paper=(0.92, 0.92, 0.92))
    assert ink_images(blank, (100, 128)).min() == 1.0  # not a page of noise stretched up to ink


def test_letterbox_puts_the_ink_where_fit_images_puts_the_page():
    page = _page(h=300)  # wider than the target's aspect ratio: bands of paper above and below
    page[:, :, 150, 100:540] = 0.0
    ink, plain = ink_images(page, (100, 128)), fit_images(page, (100, 128))
    col = 64
    assert int(ink[0, 0, :, col].argmin()) == int(plain[0, 0, :, col].argmin()) == 50
    assert ink[0, :, :20].min() == 1.0 and ink[0, :, 80:].min() == 1.0
    stretched = ink_images(page, (100, 128), fit="resize")
    assert stretched[0, 0, 50, 30:100].max() == 0.0
    at_size = ink_images(page[..., :100, :128], (100, 128))  # the page already at the size: no pooling
    assert at_size.shape == (1, 3, 100, 128)
    with pytest.raises(ValueError, match="fit"):
        ink_images(page, (100, 128), fit="crop")


def test_image_tensor_ink_is_ink_images_of_the_file(tmp_path):
    from PIL import Image

    page = _page()
    page[:, :, 251, 100:540] = 0.0
    path = tmp_path / "page.png"
    Image.fromarray((page[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    assert torch.allclose(image_tensor(path, (100, 128), ink=True), ink_images(page, (100, 128))[0], atol=1e-6)
    assert not torch.allclose(image_tensor(path, (100, 128)), image_tensor(path, (100, 128), ink=True))


@pytest.mark.parametrize("n", [1, 2, 999, 1001, 233_750])
def test_the_ink_level_quantile_is_torch_quantile_bit_for_bit(n):
    """The page's ink level comes from the top 0.1 % of its values (topk), not a full sort; it must equal
    torch.quantile exactly, with ties and with mostly blank pages."""
    from ecgalign.render.imagefile import INK_QUANTILE, _upper_quantile

    g = torch.Generator().manual_seed(n)
    v = torch.rand(4, n, generator=g)
    for rows in (v, (v * 4).round() / 4, torch.where(v > 0.995, v, torch.zeros_like(v))):
        for q in (INK_QUANTILE, 0.9, 0.5):
            assert torch.equal(_upper_quantile(rows, q), torch.quantile(rows, q, dim=1)), (n, q)
