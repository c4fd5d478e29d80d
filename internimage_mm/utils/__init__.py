from .checkpoint import (LoadReport, classifier_cfg_from_official, convert_official_classifier,
                         extract_state_dict, load_backbone_checkpoint, strip_wrapper_prefixes)
from .det_checkpoint import (DetConversionReport, IncompleteConversionError,
                             convert_official_detector, convert_official_detector_checkpoint)

__all__ = [
    'DetConversionReport', 'IncompleteConversionError', 'LoadReport',
    'classifier_cfg_from_official', 'convert_official_classifier', 'convert_official_detector',
    'convert_official_detector_checkpoint', 'extract_state_dict', 'load_backbone_checkpoint',
    'strip_wrapper_prefixes'
]
