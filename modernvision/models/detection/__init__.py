"""Detection models: one file per paper. Importing this package registers every builder.

The interfaces every detector shares live here too: :class:`Detector` (the input boundary and
the train/eval contract), :class:`DetectionTransform`, :class:`Detections` and
:class:`ImageBatch`.
"""

import importlib
import pkgutil

from modernvision.models.detection._generalized import Detector
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import DetectionTransform

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DetectionTransform", "Detections", "Detector", "ImageBatch"]
