"""modernvision: modern computer vision, paper-faithful, verified against the references."""

__version__ = "0.1.0"
