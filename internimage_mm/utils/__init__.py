from .checkpoint import (LoadReport, classifier_cfg_from_official, convert_official_classifier,
                         extract_state_dict, load_backbone_checkpoint, strip_wrapper_prefixes)

__all__ = [
    'LoadReport', 'classifier_cfg_from_official', 'convert_official_classifier',
    'extract_state_dict', 'load_backbone_checkpoint', 'strip_wrapper_prefixes'
]
