"""Reliability: the bad inputs a new user tries, and what each one gets.

Each case runs one ``modernvision`` command line in this process, inside a folder of prepared
inputs (a junk "image", an empty file, a directory, a 4x4 PNG, a truncated JSON, ...), through
the command line's own parser, and handles errors as the command line does once it catches only
``modernvision._errors.UserError``: a ``UserError`` prints ``modernvision CMD: error: MESSAGE``
and exits 2; argparse's own errors print their usage and message and exit 2; anything else is a
library bug and is recorded as a traceback. The table in ``bench/reliability.md`` lists the
exact line each case prints.

``tests/cli/test_cli_user_errors.py`` runs the same cases and checks that each exits 2 with a
message containing ``Case.expect`` and no traceback.

Run: ``python bench/reliability.py [--out bench/reliability.md]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        command: the table's group (the subcommand).
        what: the mistake, in words.
        argv: the command line after ``modernvision``, run inside the inputs folder.
        expect: a part of the message it must print (checked by tests/cli).
    """

    command: str
    what: str
    argv: tuple[str, ...]
    expect: str


def _c(command: str, what: str, argv: str, expect: str) -> Case:
    return Case(command, what, tuple(argv.split()), expect)


TRAIN = ("train --model compact_cnn --data digits --epochs 1 --train-subset 64 --eval-subset 20 "
         "--no-progress --run-dir new")

CASES: list[Case] = [
    _c("data", "unknown data set name", "data fetch digts", "Did you mean: digits"),
    _c("data make-scenes", "image side too large for memory", "data make-scenes --out s "
       "--size 100000", "--size: one 100000x100000 scene needs about"),
    _c("data make-scenes", "too many images for memory", "data make-scenes --out s --images "
       "100000000", "--images 100000000:"),
    _c("data make-scenes", "image side below 16", "data make-scenes --out s --size 8",
       "--size must be at least 16x16"),
    _c("data make-scenes", "--min-objects above --max-objects", "data make-scenes --out s "
       "--min-objects 5 --max-objects 2", "need 0 <= --min-objects <= --max-objects, got 5, 2"),
    _c("data make-scenes", "--min-object-size above --max-object-size", "data make-scenes "
       "--out s --min-object-size 50 --max-object-size 10",
       "--min-object-size <= --max-object-size"),
    _c("data make-scenes", "zero images", "data make-scenes --out s --images 0",
       "argument --images: expected a positive integer, got 0"),
    _c("data make-scenes", "a size that is not a number", "data make-scenes --out s --size big",
       "argument --size: expected a positive integer, got 'big'"),
    _c("data make-scenes", "--out is a file", "data make-scenes --out afile",
       "afile is a file, expected a folder"),
    _c("data make-scenes", "--out holds other files", "data make-scenes --out .",
       "is not empty and is not a scenes folder"),
    _c("data make-scenes", "--out already holds the split", "data make-scenes --out scenes "
       "--images 2 --size 64", "already holds the 'train' split (2 images"),
    _c("data make-scenes", "negative --seed", "data make-scenes --out s --seed -1",
       "argument --seed: expected an integer >= 0, got -1"),
    _c("data show", "folder without annotations", "data show nowhere",
       "no COCO instances for split 'train'"),
    _c("data show", "truncated annotations JSON", "data show truncated_scenes",
       "instances_train.json is not valid JSON"),
    _c("data show", "zero images", "data show scenes --n 0",
       "argument --n: expected a positive integer"),
    _c("data show", "--out is a folder", "data show scenes --out adir",
       "--out adir is a folder, expected a file name"),
    _c("data show", "--out without an image suffix", "data show scenes --out grid.txt",
       "expected a .png or .jpg file name"),
    _c("faces", "image file missing", "faces missing.png", "missing.png does not exist"),
    _c("faces", "a directory as the image", "faces adir",
       "adir is a directory, expected an image file"),
    _c("faces", "text file named .png", "faces junk.png", "junk.png: not an image file"),
    _c("faces", "empty file", "faces empty.png", "empty.png is empty (0 bytes)"),
    _c("faces", "misspelt OpenCV cascade", "faces photo.png --cascade "
       "opencv:frontalfase_default", "Did you mean: frontalface_default"),
    _c("faces", "unknown packaged cascade", "faces photo.png --cascade ours:lfw",
       "unknown packaged cascade"),
    _c("faces", "cascade file missing", "faces photo.png --cascade none.xml",
       "cascade not found: "),
    _c("faces", "cascade path is a directory", "faces photo.png --cascade adir",
       "is a directory"),
    _c("faces", "truncated cascade XML", "faces photo.png --cascade junk.xml",
       "not an OpenCV cascade XML file"),
    _c("faces", "JSON that is not a cascade", "faces photo.png --cascade foreign.json",
       "foreign.json: not a usable cascade"),
    _c("faces", "--scale-factor 1", "faces photo.png --scale-factor 1",
       "argument --scale-factor: expected a number in (1, inf), got '1'"),
    _c("faces", "negative --min-neighbors", "faces photo.png --min-neighbors -1",
       "argument --min-neighbors: expected an integer >= 0"),
    _c("faces", "negative --min-size", "faces photo.png --min-size -5 10",
       "argument --min-size"),
    _c("faces", "--out is a file", "faces photo.png --out afile", "--out afile is a file"),
    _c("train-cascade", "--out is a directory", "train-cascade --out adir",
       "adir is a folder, expected a file name"),
    _c("train-cascade", "--pool-size above the 162,336 features", "train-cascade --pool-size "
       "999999", "argument --pool-size: expected an integer from 1 to 162,336"),
    _c("train-cascade", "--detection-rate above 1", "train-cascade --detection-rate 1.5",
       "argument --detection-rate: expected a number in (0, 1)"),
    _c("train-cascade", "negative --seed", "train-cascade --seed -1",
       "argument --seed: expected an integer >= 0"),
    _c("train-cascade", "zero stages", "train-cascade --stages 0",
       "argument --stages: expected a positive integer"),
    _c("match", "reference image missing", "match missing.png box_in_scene.png",
       "reference image missing.png does not exist"),
    _c("match", "scene is not an image", "match box.png junk.png",
       "cannot read scene image junk.png"),
    _c("match", "a 4x4 scene", "match box.png tiny.png",
       "tiny.png: a 4x4 image is too small to match"),
    _c("match", "--ratio 0", "match box.png box_in_scene.png --ratio 0",
       "argument --ratio: expected a number in (0, 1]"),
    _c("match", "--min-inliers below 4", "match box.png box_in_scene.png --min-inliers 3",
       "argument --min-inliers: expected an integer >= 4"),
    _c("match", "negative --ransac-threshold", "match box.png box_in_scene.png "
       "--ransac-threshold -1", "argument --ransac-threshold"),
    _c("match", "--checks 0", "match box.png box_in_scene.png --checks 0", "argument --checks"),
    _c("match", "--out is a file", "match box.png box_in_scene.png --out afile",
       "--out afile is a file"),
    _c("summary", "misspelt model", "summary resnet5", "Did you mean: resnet50"),
    _c("summary", "--input of the wrong rank", "summary compact_cnn --input 1x28",
       "--input 1x28 does not fit"),
    _c("summary", "--input not C x H x W", "summary compact_cnn --input three",
       "--input must look like 3x224x224"),
    _c("summary", "--num-classes 0", "summary compact_cnn --num-classes 0",
       "argument --num-classes"),
    _c("models", "unknown task", "models --task detektion", "unknown task 'detektion'"),
]

#: train / eval / predict: they need a trained run, made by :func:`make_run_inputs` (seconds).
RUN_CASES: list[Case] = [
    _c("train", "--eval-subset 0", f"{TRAIN} --eval-subset 0",
       "--eval-subset must be a positive integer"),
    _c("train", "--train-subset 0", f"{TRAIN} --train-subset 0",
       "--train-subset must be a positive integer"),
    _c("train", "--label-smoothing 2", f"{TRAIN} --label-smoothing 2",
       "--label-smoothing must be in [0, 1)"),
    _c("train", "--image-size 0", f"{TRAIN} --image-size 0",
       "--image-size must be a positive integer"),
    _c("train", "--batch-size 0", f"{TRAIN} --batch-size 0",
       "--batch-size must be a positive integer"),
    _c("train", "--device tpu", f"{TRAIN} --device tpu", "--device must be cpu, cuda or cuda:N"),
    _c("train", "--device cuda without CUDA", f"{TRAIN} --device cuda",
       "CUDA is not available on this machine"),
    _c("train", "--momentum with plain SGD", f"{TRAIN} --optimizer sgd --momentum 0.5",
       "--momentum 0.5 has no effect with --optimizer sgd"),
    _c("train", "misspelt model", "train --model resnt18 --data digits",
       "Did you mean: resnet18"),
    _c("train", "misspelt data set", "train --data fashon-mnist", "Did you mean: fashion-mnist"),
    _c("train", "a flag of another task", f"{TRAIN} --multiscale 224,256",
       "--multiscale does not apply to compact_cnn, a classification model"),
    _c("train", "into an existing run", f"{TRAIN} --run-dir run", "already holds a run"),
    _c("train", "--resume with another --model", "train --resume run --model resnet18",
       "--model resnet18 (the run's is compact_cnn) cannot be given"),
    _c("train", "--resume with another --data", "train --resume run --data fashion-mnist",
       "--data fashion-mnist (the run's is digits) cannot be given"),
    _c("train", "--resume a folder that is not a run", "train --resume adir",
       "adir is not a run folder (no config.json)"),
    _c("train", "--resume with a truncated checkpoint", "train --resume run_truncated",
       "is corrupt or truncated"),
    _c("train", "--resume with a truncated config.json", "train --resume run_badconfig",
       "run config run_badconfig/config.json is not valid JSON"),
    _c("train", "--extend-epochs without --resume", f"{TRAIN} --extend-epochs 2",
       "--extend-epochs needs --resume RUN"),
    _c("train", "--extend-epochs on an unfinished run", "train --resume run_truncated "
       "--extend-epochs 2", "has not finished; resume it first"),
    _c("eval", "not a run folder", "eval nope", "nope is not a run folder"),
    _c("eval", "junk weights", "eval run_junk", "cannot read weights"),
    _c("eval", "empty weights file", "eval run_empty", "cannot read weights"),
    _c("eval", "truncated config.json", "eval run_badconfig", "config.json"),
    _c("predict", "--topk -2", "predict run photo.png --topk -2",
       "--topk must be a positive integer"),
    _c("predict", "--topk 0", "predict run photo.png --topk 0",
       "--topk must be a positive integer"),
    _c("predict", "junk image", "predict run junk.png", "junk.png"),
    _c("predict", "a folder without images", "predict run adir",
       "adir is a folder with no image files"),
    _c("predict", "a detection flag on a classifier", "predict run photo.png --score-thresh "
       "0.3", "--score-thresh does not apply to classification runs"),
    _c("predict", "junk weights", "predict run_junk photo.png", "cannot read weights"),
]


def make_inputs(folder: Path) -> None:
    """Write the inputs the cases name into ``folder`` (which becomes the working directory)."""
    from modernvision.data import load_photo, opencv_sample
    from modernvision.data.scenes import SceneConfig, make_scenes

    Image.fromarray(load_photo("astronaut")[:200, 100:300]).save(folder / "photo.png")
    for name in ("box.png", "box_in_scene.png"):
        shutil.copy(opencv_sample(name), folder / name)
    (folder / "junk.png").write_text("not an image\n")
    (folder / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "tiny.png")
    (folder / "afile").write_text("a file, not a folder")
    (folder / "junk.xml").write_text("<opencv_storage><cascade>")
    (folder / "foreign.json").write_text(json.dumps({"format": "something else"}))
    (folder / "adir").mkdir()
    shown = folder / "truncated_scenes" / "annotations"
    shown.mkdir(parents=True)
    (shown / "instances_train.json").write_text('{"images": [{"id": 1, "wid')
    with contextlib.redirect_stdout(io.StringIO()):
        make_scenes(folder / "scenes", 2, config=SceneConfig(height=64, width=64,
                                                             max_object_size=24))


def make_run_inputs(folder: Path) -> None:
    """A tiny trained run ``run`` and damaged copies of it (``run_junk``: junk weights,
    ``run_empty``: empty weights, ``run_truncated``: an unfinished run whose checkpoint is cut
    in half, ``run_badconfig``: a config.json cut short)."""
    from modernvision.cli import main as cli_main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(TRAIN.replace("--run-dir new", "--run-dir run").split()) == 0
    for name in ("run_junk", "run_empty", "run_truncated", "run_badconfig"):
        shutil.copytree(folder / "run", folder / name)
    (folder / "run_junk" / "model_final.pt").write_bytes(b"not torch" * 10)
    (folder / "run_empty" / "model_final.pt").write_bytes(b"")
    ckpt = folder / "run_truncated" / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    (folder / "run_truncated" / "test_metrics.json").unlink()
    cfg = folder / "run_badconfig" / "config.json"
    cfg.write_text(cfg.read_text()[:40])


@dataclass(frozen=True)
class Outcome:
    """What a case printed: exit code, the message line, whether it was a traceback, and
    what it wrote to stdout."""

    rc: int
    message: str
    traceback: bool
    output: str = ""


def run_case(argv: list[str] | tuple[str, ...]) -> Outcome:
    """Run ``modernvision ARGV`` with the command line's narrow error handling (module doc)."""
    from modernvision._errors import UserError
    from modernvision.cli import build_parser, command_path, error_text

    err, out = io.StringIO(), io.StringIO()
    parser = build_parser()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            args = parser.parse_args(list(argv))
        except SystemExit as exc:  # argparse: usage, then "prog: error: message"
            lines = err.getvalue().strip().splitlines()
            return Outcome(int(exc.code or 0), lines[-1] if lines else "", False, out.getvalue())
        try:
            rc = args.func(args)
        except UserError as exc:
            return Outcome(2, f"modernvision {command_path(parser, list(argv))}: error: "
                              f"{error_text(exc)}", False)
        except Exception as exc:  # a bug: the real command line shows the traceback
            last = traceback.format_exception_only(exc)[-1].strip()
            return Outcome(1, last, True)
    return Outcome(int(rc or 0), "(no error)", False, out.getvalue())


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".md")),
                        help="markdown file to write (default: bench/reliability.md)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    commit = _commit()
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)
        try:
            make_inputs(Path(tmp))
            make_run_inputs(Path(tmp))
            for case in CASES + RUN_CASES:
                got = run_case(case.argv)
                ok = got.rc == 2 and not got.traceback and case.expect in got.message
                rows.append((case, got, ok))
                print(f"{'ok ' if ok else 'BAD'} {' '.join(case.argv)}\n    {got.message}")
        finally:
            os.chdir(here)
    seconds = time.perf_counter() - start
    good = sum(ok for *_, ok in rows)
    lines = [
        "# Reliability: bad inputs and what they get",
        "",
        f"`python bench/reliability.py` at commit `{commit}` ({len(rows)} cases, {good} "
        f"answered as expected: exit 2, one line naming the flag or file, no traceback; "
        f"{seconds:.0f} s). Each command runs inside a folder of prepared inputs (`junk.png` is "
        "a text file, `empty.png` 0 bytes, `tiny.png` 4x4, `adir` a directory, `afile` a file, "
        "`junk.xml` a truncated XML, `truncated_scenes` a scenes folder whose JSON stops "
        "mid-way, `scenes` a 2-image scenes folder), with the command line's error handling: "
        "a `UserError` is one line and exit 2, anything else a traceback.",
        "",
        "| command | bad input | command line | exit | what the user gets |",
        "|---|---|---|---|---|",
    ]
    for case, got, ok in rows:
        shown = ("TRACEBACK: " if got.traceback else "") + got.message
        lines.append(f"| {case.command} | {_cell(case.what)} | `modernvision "
                     f"{_cell(' '.join(case.argv))}` | {got.rc}{'' if ok else ' (!)'} | "
                     f"{_cell(shown)} |")
    out.write_text("\n".join(lines) + "\n")
    print(f"{good}/{len(rows)} as expected; wrote {out}")


if __name__ == "__main__":
    main()
