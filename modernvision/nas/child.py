"""The child networks of the search: :mod:`modernvision.models.classification.nas_cnn`
(registered there as ``nas_cnn``, so that ``create`` rebuilds a searched architecture)."""

from modernvision.models.classification.nas_cnn import (
    DEFAULT_ARCH,
    NASChild,
    SearchSpace,
    nas_cnn,
    validate_arch,
)

__all__ = ["DEFAULT_ARCH", "NASChild", "SearchSpace", "nas_cnn", "validate_arch"]
