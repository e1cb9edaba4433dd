"""Losses: pure tensor functions (named terms) with thin modules only where state is needed."""

from ecgalign.losses.captioning import caption_loss
from ecgalign.losses.contrastive import ClipLoss, clip_loss, gather_with_grad
from ecgalign.losses.information_bottleneck import ib_cosine_penalty
from ecgalign.losses.reconstruction import masked_mse

__all__ = ["ClipLoss", "caption_loss", "clip_loss", "gather_with_grad", "ib_cosine_penalty", "masked_mse"]
