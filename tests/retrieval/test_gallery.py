"""The gallery: enrol -> query round trip, persistence, atomicity, and errors for people."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError
from modernvision.cli import main
from modernvision.retrieval.gallery import Gallery, enrol


def test_embedding_run_reports_held_out_retrieval(embedding_run):
    metrics = json.loads((embedding_run / "test_metrics.json").read_text())
    assert {"test_recall@1", "test_recall@5", "test_map_at_r"} <= set(metrics)
    meta = json.loads((embedding_run / "config.json").read_text())["meta"]
    assert meta["train_classes"] == [0, 1, 2, 3, 4] and meta["test_classes"] == [5, 6, 7, 8, 9]


def test_enrol_query_round_trip(embedding_run, identity_dir, tmp_path, capsys):
    db = tmp_path / "g.npz"
    assert main(["gallery", "enrol", "--db", str(db), "--model", str(embedding_run),
                 str(identity_dir / "gallery")]) == 0
    out = capsys.readouterr().out
    assert "enrolled digit5: 3 images" in out and "3 identities, 9 images" in out
    # an enrolled image finds itself first, at distance 0
    probe = identity_dir / "gallery" / "digit6" / "1.png"
    assert main(["gallery", "query", "--db", str(db), str(probe), "-k", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{probe}: digit6 | digit6 0.000 (1.png)")
    assert main(["gallery", "query", "--db", str(db), str(identity_dir / "queries"), "-k", "2",
                 "--index", "faiss-flat"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["gallery", "list", "--db", str(db)]) == 0
    assert "digit7\t3" in capsys.readouterr().out
    # grows without retraining; remove takes an identity out
    extra = tmp_path / "more" / "digit5b"
    extra.mkdir(parents=True)
    shutil.copy(identity_dir / "queries" / "digit5.png", extra / "q.png")
    assert main(["gallery", "enrol", "--db", str(db), "--model", str(embedding_run),
                 str(extra.parent)]) == 0
    assert len(Gallery.load(db)) == 10
    assert main(["gallery", "remove", "--db", str(db), "digit5"]) == 0
    g = Gallery.load(db)
    assert len(g) == 7 and "digit5" not in g.counts()
    assert main(["gallery", "remove", "--db", str(db), "digit55"]) == 2
    assert "digit5b" in capsys.readouterr().err


def test_unreadable_image_is_named_and_nothing_is_written(embedding_run, identity_dir,
                                                          tmp_path, capsys):
    people = tmp_path / "people"
    shutil.copytree(identity_dir / "gallery", people)
    db = tmp_path / "g.npz"
    enrol(db, embedding_run, people)
    before = db.read_bytes()
    (people / "digit8").mkdir()
    (people / "digit8" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(BadFileError, match="broken.png"):
        enrol(db, embedding_run, people)
    assert db.read_bytes() == before
    assert main(["gallery", "enrol", "--db", str(tmp_path / "new.npz"), "--model",
                 str(embedding_run), str(people)]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "new.npz").exists()


def test_failed_write_leaves_the_database_as_it_was(embedding_run, identity_dir, tmp_path,
                                                    monkeypatch):
    db = tmp_path / "g.npz"
    enrol(db, embedding_run, identity_dir / "gallery")
    before = db.read_bytes()
    import modernvision.engine.checkpoint as ckpt

    def crash(src, dst):
        raise OSError("disk died while renaming")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="disk died"):
        enrol(db, embedding_run, identity_dir / "gallery")
    monkeypatch.undo()
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.npz"]  # no temporary left
    assert len(Gallery.load(db)) == 9


def test_query_errors(embedding_run, identity_dir, tmp_path, capsys):
    db = tmp_path / "g.npz"
    assert main(["gallery", "query", "--db", str(db), str(identity_dir / "queries")]) == 2
    assert "does not exist" in capsys.readouterr().err
    enrol(db, embedding_run, identity_dir / "gallery")
    for name in ("digit5", "digit6", "digit7"):
        Gallery.load(db).remove(name).save(db)
    assert main(["gallery", "query", "--db", str(db), str(identity_dir / "queries")]) == 2
    assert "is empty" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(BadFileError, match="junk.npz"):
        Gallery.load(tmp_path / "junk.npz")


def test_model_with_another_embedding_size_is_refused(embedding_run, embedding_run_8d,
                                                      identity_dir, tmp_path, capsys):
    db = tmp_path / "g.npz"
    enrol(db, embedding_run, identity_dir / "gallery")
    before = db.read_bytes()
    assert main(["gallery", "enrol", "--db", str(db), "--model", str(embedding_run_8d),
                 str(identity_dir / "gallery")]) == 2
    err = capsys.readouterr().err
    assert "8-d embeddings" in err and "16-d" in err
    assert db.read_bytes() == before


def test_not_an_embedding_run_or_folder(embedding_run, identity_dir, tmp_path):
    with pytest.raises(MissingFileError, match="identity"):
        enrol(tmp_path / "g.npz", embedding_run, tmp_path)
    with pytest.raises(MissingFileError, match="not a run folder"):
        enrol(tmp_path / "g.npz", tmp_path / "nothing", identity_dir / "gallery")
    assert not (tmp_path / "g.npz").exists()


def test_detect_crops_faces_and_names_images_without_one(embedding_run, tmp_path, capsys):
    from modernvision.data import load_photo

    people = tmp_path / "people"
    (people / "eileen").mkdir(parents=True)
    cv2.imwrite(str(people / "eileen" / "a.png"), load_photo("astronaut")[..., ::-1])
    db = tmp_path / "faces.npz"
    assert main(["gallery", "enrol", "--db", str(db), "--model", str(embedding_run),
                 "--detect", "opencv:frontalface_default", str(people)]) == 0
    assert Gallery.load(db).detect == "opencv:frontalface_default"
    (people / "nobody").mkdir()
    cv2.imwrite(str(people / "nobody" / "wall.png"), np.full((120, 120), 128, np.uint8))
    before = db.read_bytes()
    assert main(["gallery", "enrol", "--db", str(db), "--model", str(embedding_run),
                 "--detect", "opencv:frontalface_default", str(people)]) == 2
    assert "no face found in" in capsys.readouterr().err
    assert db.read_bytes() == before
    # the query crops with the gallery's own detector
    assert main(["gallery", "query", "--db", str(db), str(people / "eileen" / "a.png"),
                 "-k", "1"]) == 0
    assert "eileen 0.000" in capsys.readouterr().out
    with pytest.raises(InvalidArgumentError, match="wall.png"):
        enrol(tmp_path / "x.npz", embedding_run, people, detect="opencv:frontalface_default")


@pytest.mark.parametrize("flags, message", [
    (["--loss", "arcface"], "--loss must be one of"),
    (["--mining", "medium"], "--mining must be one of"),
    (["--classes", "0-4,3"], "--classes must be distinct"),
    (["--classes", "0-12"], "has classes 0-9"),
    (["--k", "1"], "--k must be >= 2"),
])
def test_train_flags_are_checked(flags, message, tmp_path, capsys):
    argv = ["train", "--model", "embedding_net", "--data", "digits", "--epochs", "1",
            "--run-dir", str(tmp_path / "r"), *flags]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_predict_and_eval_an_embedding_run(embedding_run, identity_dir, tmp_path, capsys):
    assert main(["predict", str(embedding_run), str(identity_dir / "queries"), "--out",
                 str(tmp_path / "p")]) == 0
    assert "embedding [16]" in capsys.readouterr().out
    emb = np.load(tmp_path / "p" / "embeddings.npy")
    assert emb.shape == (3, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert main(["eval", str(embedding_run)]) == 0
    assert "test_map_at_r" in capsys.readouterr().out
