"""mmdet detectors (registered when mmdet is installed)."""
from .legacy_dino import LegacyDINO, SineSubsetRefPointHead

__all__ = ['LegacyDINO', 'SineSubsetRefPointHead']
