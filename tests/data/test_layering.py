"""Import layering: the RLE codec sits below formats and metrics; light modules stay torch-free."""

import subprocess
import sys

import pytest


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["modernvision.data.masks", "modernvision.data.io"])
def test_codec_and_decoder_import_neither_torch_nor_metrics(module):
    mods = _imported_after(f"import {module}")
    assert "torch" not in mods and "modernvision.metrics" not in mods


def test_formats_do_not_import_metrics():
    mods = _imported_after("import modernvision.data.formats")
    assert "modernvision.data.masks" in mods and "modernvision.metrics" not in mods


def test_metrics_reexport_the_codec():
    import modernvision.data.masks as codec
    import modernvision.metrics as metrics
    import modernvision.metrics.masks as metric_masks

    for name in codec.__all__:
        assert getattr(metric_masks, name) is getattr(codec, name)
    assert metrics.rle_encode is codec.rle_encode
    assert metrics.polygons_to_rle is codec.polygons_to_rle
