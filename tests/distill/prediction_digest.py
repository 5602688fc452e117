"""``PredictionDigest``, a test metric: deterministic sums of a detector's
predictions (count, scores, score-weighted coordinates), a fingerprint of its outputs
that is not 0 for an untrained detector (whose COCO mAP is).

Imported by the tools through ``custom_imports = dict(imports=['prediction_digest'])``
with this folder on ``PYTHONPATH`` (tests/distill/test_teacher_val_loop.py)."""
from typing import Dict, Sequence

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric


@METRICS.register_module(force=True)
class PredictionDigest(BaseMetric):
    """``digest/boxes``, ``digest/score_sum``, ``digest/weighted_box_sum``."""

    default_prefix = 'digest'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            scores = pred['scores'].double()
            weighted = (pred['bboxes'].double() * scores[:, None]).sum()
            self.results.append((len(scores), scores.sum().item(), weighted.item()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        return dict(boxes=float(sum(r[0] for r in results)),
                    score_sum=sum(r[1] for r in results),
                    weighted_box_sum=sum(r[2] for r in results))
