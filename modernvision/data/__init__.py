"""Data: the real offline sets by name, formats, transforms, scenes."""

from modernvision.data.datasets import (
    DATASETS,
    PHOTOS,
    ArrayDataset,
    load_arrays,
    load_photo,
    opencv_sample,
    quokka,
)
from modernvision.data.fetch import DataUnavailableError, data_dir

__all__ = [
    "DATASETS",
    "PHOTOS",
    "ArrayDataset",
    "DataUnavailableError",
    "data_dir",
    "load_arrays",
    "load_photo",
    "opencv_sample",
    "quokka",
]
