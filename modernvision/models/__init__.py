"""Model zoo: ``create(name)``, ``list_models()``, ``convert_torchvision_state_dict``."""

from modernvision.models.registry import (
    ModelEntry,
    convert_torchvision_state_dict,
    create,
    get_entry,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "convert_torchvision_state_dict",
    "create",
    "get_entry",
    "list_models",
    "register_model",
]
