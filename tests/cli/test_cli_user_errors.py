"""``data``, ``faces``, ``train-cascade``, ``match``, ``models``, ``summary``: every user mistake is
one line naming the flag or the file, raised as a ``UserError`` (the only type the command line
turns into a message); anything else surfaces here as a traceback.

The bad inputs are ``bench/reliability.py``'s cases (the table in ``bench/reliability.md``), so
the table and this test cannot drift apart.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modernvision.cli import build_parser
from modernvision.data import opencv_sample

_spec = importlib.util.spec_from_file_location(
    "bench_reliability", Path(__file__).parents[2] / "bench" / "reliability.py")
reliability = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = reliability  # dataclasses look their module up there
_spec.loader.exec_module(reliability)
OWN = {"data", "data make-scenes", "data show", "faces", "train-cascade", "match", "summary",
       "models"}
CASES = [c for c in reliability.CASES if c.command in OWN]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    reliability.make_inputs(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c.argv) for c in CASES])
def test_user_mistake_is_one_line_naming_it(case, inputs, monkeypatch):
    monkeypatch.chdir(inputs)
    got = reliability.run_case(case.argv)
    assert not got.traceback, got.message
    assert got.rc == 2 and case.expect in got.message, got.message


def run(argv: list[str]) -> tuple[int, str]:
    """``(exit code, stdout or the error line)`` of ``modernvision ARGV``; no traceback."""
    got = reliability.run_case(argv)
    assert not got.traceback, got.message
    return got.rc, got.output if got.message == "(no error)" else got.message


def test_make_scenes_refuses_an_existing_split_until_overwrite(tmp_path):
    out = str(tmp_path / "s")
    argv = ["data", "make-scenes", "--out", out, "--images", "2", "--size", "64"]
    assert run(argv)[0] == 0
    rc, message = run(argv[:5] + ["1", "--size", "64"])
    assert rc == 2 and "already holds the 'train' split (2 images" in message
    assert "--overwrite" in message
    rc, printed = run(argv[:5] + ["1", "--size", "64", "--overwrite"])
    assert rc == 0 and "--overwrite: replacing the 'train' split" in printed
    assert sorted(p.name for p in (tmp_path / "s" / "images" / "train").iterdir()) == [
        "000001.png"]


def test_faces_and_match_read_16bit_png_as_8bit(tmp_path):
    grey = np.asarray(Image.open(opencv_sample("box.png")))
    path = tmp_path / "box16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    rc, out = run(["match", str(path), str(opencv_sample("box_in_scene.png")), "--out",
                   str(tmp_path)])
    assert rc == 0 and ": found:" in out  # the 16-bit reference is the same photo
    assert run(["faces", str(path)])[0] == 0


def test_data_list_shows_whether_each_set_is_cached(capsys, tmp_path, monkeypatch):
    rc, out = run(["data", "list"])
    assert rc == 0 and "status" in out
    assert "installed with scikit-learn" in out  # digits ship with scikit-learn
    monkeypatch.setenv("MODERNVISION_DATA", str(tmp_path))  # an empty cache
    rc, out = run(["data", "list"])
    line = next(x for x in out.splitlines() if x.strip().startswith("fashion-mnist"))
    assert "not cached" in line
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "list", "--help"])
    assert "cached" in capsys.readouterr().out


def test_registering_these_commands_imports_nothing_heavy():
    code = (
        "import argparse, sys\n"
        "from modernvision.cli import data, faces, match, models\n"
        "sub = argparse.ArgumentParser().add_subparsers()\n"
        "for m in (data, faces, match, models): m.register(sub)\n"
        "print(' '.join(m for m in ('torch', 'torchvision', 'numpy', 'cv2', 'numba', 'PIL')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_train_cascade_help_defaults_are_the_recipe():
    from modernvision.classic.viola_jones.train import LFW_RECIPE
    from modernvision.cli.faces import _RECIPE_DEFAULTS

    assert all(LFW_RECIPE[k] == v for k, v in _RECIPE_DEFAULTS.items())
