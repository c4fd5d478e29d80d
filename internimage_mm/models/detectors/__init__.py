"""mmdet detectors (imported through :mod:`internimage_mm.tasks.detection`)."""
