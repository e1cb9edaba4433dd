"""All panels' samples as one flat point set, so traces, their ground truth and their boxes take a few
batched tensor operations per batch rather than a handful per panel."""

from __future__ import annotations

import torch

from ecgalign.render.draw import Polylines
from ecgalign.render.layout import Page


class TraceIndex:
    """For a page: which lead and sample every drawn point shows, and where it sits (page px) at 0 mV."""

    def __init__(self, page: Page, device: torch.device):
        lead, sample, panel, base = [], [], [], []
        self.slices = []
        start = 0
        for k, p in enumerate(page.panels):
            n = p.sample_stop - p.sample_start
            lead.append(torch.full((n,), p.lead_index, dtype=torch.long))
            sample.append(torch.arange(p.sample_start, p.sample_stop))
            panel.append(torch.full((n,), k, dtype=torch.long))
            base.append(torch.full((n,), p.baseline_y, dtype=torch.float64))
            self.slices.append(slice(start, start + n))
            start += n
        self.n_panels = len(page.panels)
        self.lead = torch.cat(lead).to(device)
        self.sample = torch.cat(sample).to(device)
        self.panel = torch.cat(panel).to(device)
        x = page.trace_x0 + torch.cat(sample).double() / page.fs * page.speed * page.px_per_mm
        self.x = x.float().to(device)
        self.base = torch.cat(base).float().to(device)
        self.mv_to_px = page.gain * page.px_per_mm
        join = torch.ones(start - 1, dtype=torch.bool)
        for s in self.slices[:-1]:
            join[s.stop - 1] = False  # no segment from one panel's last sample to the next panel's first
        self.join = join.to(device)

    def page_points(self, signals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, 2) page pixels of every shown sample (NaN where the signal is NaN) and (B, P) missing panels
        (no finite sample in the window)."""
        v = signals[:, self.lead, self.sample]  # (B, N)
        y = self.base - v * self.mv_to_px
        finite = torch.isfinite(y)
        x = torch.where(finite, self.x, torch.full_like(y, float("nan")))
        counts = torch.zeros(signals.shape[0], self.n_panels, device=signals.device)
        counts.index_add_(1, self.panel, finite.float())
        return torch.stack([x, y], -1), (counts == 0).cpu()

    def split(self, points: torch.Tensor) -> list[torch.Tensor]:
        return [points[:, s] for s in self.slices]

    def polylines(self, points: torch.Tensor) -> Polylines:
        return points_polylines(points, self.join)

    def boxes(self, points: torch.Tensor, half_width: float, width: int, height: int) -> torch.Tensor:
        """(B, P, 4) x0, y0, x1, y1 of each panel's finite points padded by the half line width, clipped to
        the image; NaN for panels without a finite point."""
        b = points.shape[0]
        finite = torch.isfinite(points).all(-1, keepdim=True)
        inf = float("inf")
        index = self.panel[None, :, None].expand(b, -1, 2)
        lo = torch.full((b, self.n_panels, 2), inf, device=points.device)
        hi = torch.full((b, self.n_panels, 2), -inf, device=points.device)
        lo.scatter_reduce_(1, index, torch.where(finite, points, inf), "amin")
        hi.scatter_reduce_(1, index, torch.where(finite, points, -inf), "amax")
        box = torch.cat([lo - half_width, hi + half_width], -1)
        box[..., 0::2] = box[..., 0::2].clamp(0, width - 1)
        box[..., 1::2] = box[..., 1::2].clamp(0, height - 1)
        box[~torch.isfinite(lo).all(-1)] = float("nan")
        return box


def segment_points(segments: list[list[tuple[float, float]]], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Polylines given as point lists -> their points (N, 2) float32 and ``join`` (N - 1,): consecutive points
    of one polyline joined, none across two (the form ``points_polylines`` takes)."""
    points = torch.tensor([pt for seg in segments for pt in seg], dtype=torch.float32, device=device)
    join = torch.tensor([k < len(seg) - 1 for seg in segments for k in range(len(seg))][:-1], device=device)
    return points, join


def points_polylines(points: torch.Tensor, join: torch.Tensor) -> Polylines:
    """(B, N, 2) points of each image, joined where ``join`` (N - 1,) and both ends are finite."""
    b, n, _ = points.shape
    finite = torch.isfinite(points).all(-1)
    j = finite[:, :-1] & finite[:, 1:] & join
    j = torch.cat([j, torch.zeros(b, 1, dtype=torch.bool, device=points.device)], 1).reshape(-1)[:-1]
    image = torch.arange(b, device=points.device).repeat_interleave(n)
    return Polylines(points.reshape(-1, 2), image, j)
