"""Losses: pure tensor functions (named terms) with thin modules only where state is needed."""

from ecgalign.losses.captioning import caption_loss
from ecgalign.losses.contrastive import ClipLoss, clip_loss, gather_with_grad
from ecgalign.losses.gram import gram_loss, gram_volume, gram_volume_matrix
from ecgalign.losses.information_bottleneck import ib_cosine_penalty
from ecgalign.losses.lead_consistency import lead_consistency_loss, refine_limb_leads
from ecgalign.losses.reconstruction import masked_mse

__all__ = ["ClipLoss", "caption_loss", "clip_loss", "gather_with_grad", "gram_loss", "gram_volume",
           "gram_volume_matrix", "ib_cosine_penalty", "lead_consistency_loss", "masked_mse", "refine_limb_leads"]
