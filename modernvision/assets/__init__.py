"""Small weights shipped with the package (each produced by our own ``modernvision train``;
the reproducing command is in the bench file that reports it)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).parent
