"""mmdet: DINO with the official query-position layout and box refinement, DINO on the
composite CB-InternImage backbone, the validated COCO dataset."""
import internimage_mm  # noqa: F401  (the backbone and the engine)
from internimage_mm.datasets.coco import ValidatedCocoDataset
from internimage_mm.models.detectors.cb_dino import CBDINO
from internimage_mm.models.detectors.legacy_dino import LegacyDINO
from internimage_mm.models.heads.legacy_dino_head import LegacyDINOHead

__all__ = ['CBDINO', 'LegacyDINO', 'LegacyDINOHead', 'ValidatedCocoDataset']
