"""``triplet``: the triplet-margin loss with a semi-hard miner, SGM's metric-learning peer.

The baseline the SGM paper's retrieval and clustering numbers should be compared with: the
same linear embedding, the same class-balanced batches, the same k-NN prediction and
sub-class machinery as ``sgm`` (:class:`~affectlab.methods.sgm.EmbeddingKnnMethod`); only the
loss differs. The loss is pytorch-metric-learning's ``TripletMarginLoss`` (L2-normalised
embeddings, Euclidean distance, the mean over the triplets with a positive loss) on the
triplets its ``TripletMarginMiner`` finds in the batch (``semihard`` by default: negatives
farther than the positive but within the margin), with the argmax of each item's (soft)
label as its class.

pytorch-metric-learning is an optional dependency (``pip install 'affectlab[study]'``); the
method is registered without it and says so when built.
"""

from __future__ import annotations

from typing import Any

import torch

from affectlab.methods.base import TrainSetInfo
from affectlab.methods.sgm import _EMBEDDING_PARAMS, EmbeddingKnnMethod
from affectlab.models.base import EmotionModel
from affectlab.registry import Param

__all__ = ["MINED_TRIPLETS", "TripletMethod"]

MINED_TRIPLETS = ("semihard", "hard", "easy", "all")


def _pml():
    try:
        from pytorch_metric_learning import losses, miners
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise ImportError("method 'triplet' needs pytorch-metric-learning: pip install "
                          "'affectlab[study]' (or pytorch-metric-learning)") from exc
    return losses, miners


class TripletMethod(EmbeddingKnnMethod):
    """Triplet-margin loss on mined triplets of class-balanced batches; k-NN prediction.

    Params: ``margin`` (0.2), ``triplets`` (which triplets the miner keeps: semihard, hard,
    easy, all) and the embedding, batch, k-NN and sub-class parameters of ``sgm``.
    Parts logged: ``triplet``; ``level``.
    """

    description = ("triplet-margin loss with a semi-hard miner (pytorch-metric-learning) on "
                   "SGM's embedding and batches; k-NN prediction (the SGM claim's peer)")
    param_specs = (
        Param("margin", float, 0.2, low=0, low_open=True, high=4.0,
              help="margin of the triplet loss (distances of L2-normalised embeddings)"),
        Param("triplets", str, "semihard", choices=MINED_TRIPLETS,
              help="which triplets of the batch the miner keeps"),
        *_EMBEDDING_PARAMS,
    )

    def __init__(self, model: EmotionModel, info: TrainSetInfo, method_name: str = "triplet",
                 **params: Any) -> None:
        super().__init__(model, info, method_name=method_name, **params)
        losses, miners = _pml()
        margin = float(self.params["margin"])
        self.loss_fn = losses.TripletMarginLoss(margin=margin)
        self.miner = miners.TripletMarginMiner(margin=margin,
                                               type_of_triplets=self.params["triplets"])

    def embedding_loss(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, str]:
        z = z.float()
        labels = y.argmax(dim=1)
        return self.loss_fn(z, labels, self.miner(z, labels)), "triplet"
