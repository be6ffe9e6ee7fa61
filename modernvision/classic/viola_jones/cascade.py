"""The attentional cascade as data: Haar features, boosted weak trees, stages; JSON and XML I/O.

Paper: "Rapid Object Detection using a Boosted Cascade of Simple Features", Viola & Jones,
CVPR 2001 (IJCV 2004 journal version), sections 2-4. A cascade is a list of stages; each stage
sums the votes of its weak classifiers and rejects the window as soon as the sum falls below the
stage threshold.

One representation serves both our cascades and OpenCV's:

* A feature is up to four weighted rectangles in the detection window (OpenCV uses at most
  three, with weights such as ``-1`` on a whole rectangle and ``+2``/``+3`` on a part; ours use
  the paper's disjoint ``+1`` white / ``-1`` black rectangles) and may be *tilted* by 45 degrees
  (Lienhart & Maydt's extension, used by some OpenCV cascades).
* A weak classifier is a small decision tree (a stump has one node). Node ``k`` sends the window
  to ``left`` if ``feature < threshold`` else ``right``; a child ``> 0`` is another node of the
  same tree, a child ``<= 0`` is leaf ``-child``. The paper's stump ``h(x) = 1 if p f(x) < p
  theta`` weighted by ``alpha`` is the one-node tree with leaves ``(alpha, 0)`` or ``(0, alpha)``.
* ``Stage.threshold`` is the threshold actually compared (``sum < threshold`` rejects).
  OpenCV's loader subtracts ``1e-5`` from the XML value in float32; :func:`load_opencv_cascade`
  does the same so that the comparison is bit-for-bit OpenCV's.

Numbers keep OpenCV's precision (float32 thresholds, weights and leaf values) so that a cascade
runs identically in our detector and in ``cv2.CascadeClassifier``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modernvision._errors import BadFileError, MissingFileError, unknown_name

if TYPE_CHECKING:
    from modernvision.classic.viola_jones.detect import DetectionStats

__all__ = [
    "FORMAT_NAME",
    "Cascade",
    "DecisionTree",
    "HaarFeatures",
    "Stage",
    "load_cascade",
    "load_opencv_cascade",
    "opencv_cascade_path",
]

FORMAT_NAME = "modernvision.viola_jones.cascade"
FORMAT_VERSION = 1
MAX_RECTS = 4
# OpenCV: stage.threshold = (float)xml_value - THRESHOLD_EPS (cascadedetect.cpp, Data::read).
OPENCV_THRESHOLD_EPS = np.float32(1e-5)
PACKAGED_CASCADES = {"lfw_24": "lfw_24.json"}


@dataclass
class HaarFeatures:
    """A set of Haar-like features over a detection window.

    Attributes:
        rects: int32 ``[F, 4, 4]``, each rectangle ``(x, y, w, h)`` in window pixels; unused
            slots have zero weight.
        weights: float32 ``[F, 4]``.
        tilted: bool ``[F]``, 45-degree rotated features (Lienhart & Maydt).
    """

    rects: np.ndarray
    weights: np.ndarray
    tilted: np.ndarray

    def __post_init__(self) -> None:
        self.rects = np.ascontiguousarray(self.rects, dtype=np.int32)
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        self.tilted = np.ascontiguousarray(self.tilted, dtype=np.bool_)
        f = len(self.rects)
        if self.rects.shape != (f, MAX_RECTS, 4) or self.weights.shape != (f, MAX_RECTS):
            raise ValueError(
                f"features: expected rects [F, {MAX_RECTS}, 4] and weights [F, {MAX_RECTS}], "
                f"got {self.rects.shape} and {self.weights.shape}"
            )
        if self.tilted.shape != (f,):
            raise ValueError(f"features: expected tilted [F], got {self.tilted.shape}")

    def __len__(self) -> int:
        return len(self.rects)

    def subset(self, index: np.ndarray) -> HaarFeatures:
        return HaarFeatures(self.rects[index], self.weights[index], self.tilted[index])


@dataclass
class DecisionTree:
    """One weak classifier: a tree over feature values (a stump when it has one node).

    Attributes:
        feature: int32 ``[n]`` feature index of each node.
        threshold: float32 ``[n]``.
        left, right: int32 ``[n]`` children (``> 0`` node index, ``<= 0`` leaf ``-child``).
        leaves: float32 ``[n + 1]`` votes.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaves: np.ndarray

    def __post_init__(self) -> None:
        self.feature = np.asarray(self.feature, dtype=np.int32).reshape(-1)
        self.threshold = np.asarray(self.threshold, dtype=np.float32).reshape(-1)
        self.left = np.asarray(self.left, dtype=np.int32).reshape(-1)
        self.right = np.asarray(self.right, dtype=np.int32).reshape(-1)
        self.leaves = np.asarray(self.leaves, dtype=np.float32).reshape(-1)
        n = len(self.feature)
        if n == 0 or not (len(self.threshold) == len(self.left) == len(self.right) == n):
            raise ValueError("a decision tree needs n >= 1 nodes with feature/threshold/left/right")
        if len(self.leaves) != n + 1:
            raise ValueError(f"a tree with {n} nodes needs {n + 1} leaves, got {len(self.leaves)}")

    @classmethod
    def stump(cls, feature: int, threshold: float, left: float, right: float) -> DecisionTree:
        """``left`` if ``value < threshold`` else ``right``."""
        return cls([feature], [threshold], [0], [-1], [left, right])

    @property
    def num_nodes(self) -> int:
        return len(self.feature)


@dataclass
class Stage:
    """A boosted classifier: reject when the sum of its trees' votes is ``< threshold``."""

    threshold: float
    weak: list[DecisionTree]

    def __post_init__(self) -> None:
        self.threshold = float(np.float32(self.threshold))
        if not self.weak:
            raise ValueError("a stage needs at least one weak classifier")


@dataclass
class Cascade:
    """An attentional cascade of boosted Haar-feature classifiers.

    Attributes:
        window_size: ``(width, height)`` of the detection window the features live in.
        features: the Haar features the trees refer to.
        stages: the cascade's stages, evaluated in order.
        meta: free-form provenance (how it was trained / where it was loaded from).

    The detector caches a flattened copy of the stages on first use: build a new ``Cascade``
    rather than editing ``stages`` or ``features`` of one that has already detected.
    """

    window_size: tuple[int, int]
    features: HaarFeatures
    stages: list[Stage]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w, h = (int(v) for v in self.window_size)
        if w < 3 or h < 3:
            raise ValueError(f"window_size must be at least 3x3, got {self.window_size}")
        self.window_size = (w, h)
        if not self.stages:
            raise ValueError("a cascade needs at least one stage")
        n = len(self.features)
        for si, stage in enumerate(self.stages):
            for tree in stage.weak:
                if tree.feature.min() < 0 or tree.feature.max() >= n:
                    raise ValueError(f"stage {si}: feature index out of range [0, {n})")
        r = self.features.rects
        used = self.features.weights != 0
        up = used & ~self.features.tilted[:, None]
        if np.any(
            up
            & (
                (r[..., 0] < 0)
                | (r[..., 1] < 0)
                | (r[..., 0] + r[..., 2] > w)
                | (r[..., 1] + r[..., 3] > h)
            )
        ):
            raise ValueError(f"an upright feature rectangle leaves the {w}x{h} window")
        self._packed: Any = None

    # ------------------------------------------------------------------ summary

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def features_per_stage(self) -> list[int]:
        """Number of weak classifiers in each stage (the paper's Table/Fig. counts)."""
        return [len(s.weak) for s in self.stages]

    @property
    def max_nodes_per_tree(self) -> int:
        return max(t.num_nodes for s in self.stages for t in s.weak)

    def __repr__(self) -> str:
        return (
            f"Cascade(window={self.window_size[0]}x{self.window_size[1]}, "
            f"stages={self.num_stages}, weak={sum(self.features_per_stage)}, "
            f"features={len(self.features)}, tilted={bool(self.features.tilted.any())})"
        )

    # ------------------------------------------------------------------ detection

    def detect(
        self,
        gray: np.ndarray,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
        min_size: tuple[int, int] = (0, 0),
        max_size: tuple[int, int] | None = None,
        mode: str = "opencv",
        step: float = 1.5,
        nms_iou: float | None = None,
    ) -> np.ndarray:
        """Find objects in a grey image, as ``cv2.CascadeClassifier.detectMultiScale`` does.

        Args:
            gray: uint8 grey image ``[H, W]`` (convert colour with ``to_gray``).
            scale_factor: window growth between scales, ``> 1`` (OpenCV's ``scaleFactor``).
            min_neighbors: a detection needs more than this many raw windows in its group;
                ``0`` returns the raw windows ungrouped (OpenCV's ``minNeighbors``).
            min_size: ``(w, h)``; smaller windows are not scanned (``minSize``).
            max_size: ``(w, h)``; larger windows are not scanned; ``None`` or ``(0, 0)``
                means the image size (``maxSize``).
            mode: ``"opencv"`` (default: image pyramid, OpenCV's exact boxes) or ``"paper"``
                (features scaled over one integral image).
            step: the paper's window shift at scale 1 (``"paper"`` mode only).
            nms_iou: optional greedy NMS IoU threshold applied after grouping.

        Returns:
            int32 ``[N, 4]`` boxes ``(x, y, w, h)``; see
            :func:`~modernvision.classic.viola_jones.detect.detect_multiscale`.
        """
        from modernvision.classic.viola_jones.detect import detect_multiscale

        return detect_multiscale(
            self,
            gray,
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            min_size=min_size,
            max_size=max_size,
            mode=mode,
            step=step,
            nms_iou=nms_iou,
        )

    def detect_with_stats(
        self, gray: np.ndarray, **kwargs: Any
    ) -> tuple[np.ndarray, DetectionStats]:
        """:meth:`detect` plus counts of windows scanned and features evaluated."""
        from modernvision.classic.viola_jones.detect import detect_multiscale

        return detect_multiscale(self, gray, return_stats=True, **kwargs)

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """Our cascade format as a JSON-ready dict (float32 values written exactly)."""
        feats = []
        for rects, weights, tilted in zip(
            self.features.rects, self.features.weights, self.features.tilted
        ):
            keep = weights != 0
            feats.append(
                {
                    "rects": [
                        [int(v) for v in r] + [float(w)] for r, w in zip(rects[keep], weights[keep])
                    ],
                    "tilted": bool(tilted),
                }
            )
        stages = []
        for s in self.stages:
            stages.append(
                {
                    "threshold": s.threshold,
                    "weak": [
                        {
                            "nodes": [
                                [int(a), int(b), int(f), float(t)]
                                for a, b, f, t in zip(tr.left, tr.right, tr.feature, tr.threshold)
                            ],
                            "leaves": [float(v) for v in tr.leaves],
                        }
                        for tr in s.weak
                    ],
                }
            )
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "window_size": list(self.window_size),
            "meta": self.meta,
            "features": feats,
            "stages": stages,
        }

    def save(self, path: str | Path) -> Path:
        """Write the cascade as JSON (our format); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Cascade:
        """Inverse of :meth:`to_json`."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
            raise ValueError(f"not a {FORMAT_NAME} JSON document (missing 'format' key)")
        if obj.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"cascade JSON version {obj.get('version')} is not supported "
                f"(this library reads version {FORMAT_VERSION})"
            )
        feats = obj["features"]
        rects = np.zeros((len(feats), MAX_RECTS, 4), np.int32)
        weights = np.zeros((len(feats), MAX_RECTS), np.float32)
        tilted = np.zeros(len(feats), np.bool_)
        for i, f in enumerate(feats):
            if len(f["rects"]) > MAX_RECTS:
                raise ValueError(f"feature {i} has more than {MAX_RECTS} rectangles")
            for j, r in enumerate(f["rects"]):
                rects[i, j] = r[:4]
                weights[i, j] = r[4]
            tilted[i] = bool(f.get("tilted", False))
        stages = []
        for s in obj["stages"]:
            weak = []
            for t in s["weak"]:
                nodes = np.asarray(t["nodes"], dtype=np.float64).reshape(-1, 4)
                weak.append(
                    DecisionTree(nodes[:, 2], nodes[:, 3], nodes[:, 0], nodes[:, 1], t["leaves"])
                )
            stages.append(Stage(s["threshold"], weak))
        return cls(
            tuple(obj["window_size"]),
            HaarFeatures(rects, weights, tilted),
            stages,
            dict(obj.get("meta", {})),
        )

    @classmethod
    def load(cls, path: str | Path) -> Cascade:
        """Read a cascade saved by :meth:`save`."""
        path = _cascade_file(path)
        try:
            obj = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadFileError(f"{path}: not a JSON cascade ({exc})") from exc
        try:
            return cls.from_json(obj)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise _bad_cascade(path, exc) from exc


# ---------------------------------------------------------------------------------------------
# OpenCV XML


def _numbers(elem: ET.Element | None, what: str) -> list[str]:
    if elem is None or elem.text is None:
        raise ValueError(f"OpenCV cascade: missing <{what}>")
    return elem.text.split()


def _items(elem: ET.Element | None, what: str) -> list[ET.Element]:
    if elem is None:
        raise ValueError(f"OpenCV cascade: missing <{what}>")
    return [e for e in elem if e.tag == "_"]


def _parse_new_format(root: ET.Element, source: str) -> Cascade:
    stage_type = (root.findtext("stageType") or "").strip()
    feature_type = (root.findtext("featureType") or "").strip()
    if stage_type != "BOOST":
        raise ValueError(f"{source}: stageType {stage_type!r} is not supported (only BOOST)")
    if feature_type != "HAAR":
        raise ValueError(
            f"{source}: featureType {feature_type!r} is not supported (only HAAR; "
            "LBP and HOG cascades are a different detector)"
        )
    width = int(_numbers(root.find("width"), "width")[0])
    height = int(_numbers(root.find("height"), "height")[0])
    cat = root.find("featureParams/maxCatCount")
    if cat is not None and int((cat.text or "0").split()[0]) != 0:
        raise ValueError(f"{source}: categorical (maxCatCount > 0) features are not Haar features")

    feats = _items(root.find("features"), "features")
    rects = np.zeros((len(feats), MAX_RECTS, 4), np.int32)
    weights = np.zeros((len(feats), MAX_RECTS), np.float32)
    tilted = np.zeros(len(feats), np.bool_)
    for i, f in enumerate(feats):
        rs = _items(f.find("rects"), "rects")
        if not 1 <= len(rs) <= 3:
            raise ValueError(f"{source}: feature {i} has {len(rs)} rectangles (1 to 3 expected)")
        for j, r in enumerate(rs):
            vals = _numbers(r, "rects/_")
            rects[i, j] = [int(float(v)) for v in vals[:4]]
            weights[i, j] = np.float32(float(vals[4]))
        t = f.find("tilted")
        tilted[i] = t is not None and int(float((t.text or "0").split()[0])) != 0

    stages = []
    for si, s in enumerate(_items(root.find("stages"), "stages")):
        thr = np.float32(float(_numbers(s.find("stageThreshold"), "stageThreshold")[0]))
        weak = []
        for w in _items(s.find("weakClassifiers"), "weakClassifiers"):
            nodes = _numbers(w.find("internalNodes"), "internalNodes")
            leaves = [float(v) for v in _numbers(w.find("leafValues"), "leafValues")]
            if len(nodes) % 4:
                raise ValueError(f"{source}: stage {si}: internalNodes must come in fours")
            n = len(nodes) // 4
            left = [int(nodes[4 * k]) for k in range(n)]
            right = [int(nodes[4 * k + 1]) for k in range(n)]
            feat = [int(nodes[4 * k + 2]) for k in range(n)]
            thrs = [float(nodes[4 * k + 3]) for k in range(n)]
            weak.append(DecisionTree(feat, thrs, left, right, leaves))
        stages.append(Stage(float(np.float32(thr - OPENCV_THRESHOLD_EPS)), weak))

    # OpenCV reads a cascade whose trees all have one node as stumps (left leaf first),
    # whatever the stored child indices; normalise to that.
    if max(t.num_nodes for s in stages for t in s.weak) == 1:
        for s in stages:
            for t in s.weak:
                t.left[:] = 0
                t.right[:] = -1
    return Cascade(
        (width, height),
        HaarFeatures(rects, weights, tilted),
        stages,
        {"source": source, "format": "opencv-cascade-classifier"},
    )


def _parse_old_format(root: ET.Element, source: str) -> Cascade:
    """OpenCV 1.x ``opencv-haar-classifier`` XML, converted as OpenCV's own loader does."""
    size = [int(v) for v in _numbers(root.find("size"), "size")[:2]]
    rects_l: list[np.ndarray] = []
    weights_l: list[np.ndarray] = []
    tilted_l: list[bool] = []
    stages = []
    for si, s in enumerate(_items(root.find("stages"), "stages")):
        thr = np.float32(float(_numbers(s.find("stage_threshold"), "stage_threshold")[0]))
        weak = []
        for tree in _items(s.find("trees"), "trees"):
            nodes = _items(tree, "trees/_")
            feat, thrs, left, right, leaves = [], [], [], [], []
            # Old format: each node has left_val/right_val (a leaf) or left_node/right_node.
            for node in nodes:
                f = node.find("feature")
                r = np.zeros((MAX_RECTS, 4), np.int32)
                w = np.zeros(MAX_RECTS, np.float32)
                for j, rr in enumerate(_items(f.find("rects") if f is not None else None, "rects")):
                    vals = _numbers(rr, "rects/_")
                    r[j] = [int(float(v)) for v in vals[:4]]
                    w[j] = np.float32(float(vals[4]))
                t = f.find("tilted") if f is not None else None
                rects_l.append(r)
                weights_l.append(w)
                tilted_l.append(t is not None and int(float((t.text or "0").split()[0])) != 0)
                feat.append(len(rects_l) - 1)
                thrs.append(float(_numbers(node.find("threshold"), "threshold")[0]))
                for side, out in (("left", left), ("right", right)):
                    val = node.find(f"{side}_val")
                    if val is not None:
                        leaves.append(float(_numbers(val, f"{side}_val")[0]))
                        out.append(-(len(leaves) - 1))
                    else:
                        out.append(int(_numbers(node.find(f"{side}_node"), f"{side}_node")[0]))
            if len(leaves) != len(nodes) + 1:
                raise ValueError(f"{source}: stage {si}: a tree's leaves do not match its nodes")
            weak.append(DecisionTree(feat, thrs, left, right, leaves))
        stages.append(Stage(float(np.float32(thr - OPENCV_THRESHOLD_EPS)), weak))
    features = HaarFeatures(
        np.array(rects_l).reshape(-1, MAX_RECTS, 4),
        np.array(weights_l).reshape(-1, MAX_RECTS),
        np.array(tilted_l),
    )
    return Cascade(
        (size[0], size[1]), features, stages, {"source": source, "format": "opencv-haar-classifier"}
    )


def opencv_cascade_path(name: str) -> Path:
    """Path of one of OpenCV's bundled Haar cascades, e.g. ``frontalface_default``."""
    import cv2

    base = Path(cv2.data.haarcascades)
    known = sorted(p.stem.removeprefix("haarcascade_") for p in base.glob("haarcascade_*.xml"))
    key = name.removeprefix("haarcascade_").removesuffix(".xml")
    if key not in known:
        raise unknown_name("OpenCV cascade", key, known)
    return base / f"haarcascade_{key}.xml"


def load_opencv_cascade(path: str | Path) -> Cascade:
    """Load an OpenCV Haar cascade XML (``cv2.data.haarcascades`` or ``opencv_traincascade``).

    Reads both the current ``opencv-cascade-classifier`` format and the OpenCV 1.x
    ``opencv-haar-classifier`` format. The stage thresholds are lowered by ``1e-5`` exactly as
    OpenCV's loader does.

    Args:
        path: the XML file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a Haar cascade (LBP/HOG cascades, other XML, not XML).
    """
    path = _cascade_file(path)
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise BadFileError(f"{path}: not an OpenCV cascade XML file ({exc})") from exc
    storage = tree.getroot()
    top = next(iter(storage), None)
    if storage.tag != "opencv_storage" or top is None:
        raise BadFileError(f"{path}: not an OpenCV FileStorage XML (<opencv_storage> expected)")
    kind = top.get("type_id", "")
    try:
        if kind == "opencv-cascade-classifier" or top.find("stageType") is not None:
            return _parse_new_format(top, str(path))
        if kind == "opencv-haar-classifier":
            return _parse_old_format(top, str(path))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise _bad_cascade(path, exc) from exc
    raise BadFileError(f"{path}: <{top.tag}> is not a Haar cascade (type_id={kind!r})")


def _cascade_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise MissingFileError(f"cascade {path} is a directory, expected a cascade file")
    if not path.is_file():
        raise MissingFileError(f"cascade file not found: {path}")
    return path


def _bad_cascade(path: Path, exc: Exception) -> BadFileError:
    """A cascade file whose content the parser rejected (a malformed or foreign file)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, KeyError):
        text = f"missing {text!r}"
    return BadFileError(text if text.startswith(str(path)) else f"{path}: not a usable cascade "
                        f"({text})")


def load_cascade(spec: str | Path) -> Cascade:
    """A cascade by name or path.

    Args:
        spec: ``opencv:NAME`` (one of ``cv2.data.haarcascades``, e.g.
            ``opencv:frontalface_default``), ``ours:NAME`` (a cascade shipped with this
            package: ``ours:lfw_24``), or a path to an OpenCV ``.xml`` or our ``.json`` file.
    """
    text = str(spec)
    if text.startswith("opencv:"):
        return load_opencv_cascade(opencv_cascade_path(text.split(":", 1)[1]))
    if text.startswith("ours:"):
        key = text.split(":", 1)[1]
        if key not in PACKAGED_CASCADES:
            raise unknown_name("packaged cascade", key, PACKAGED_CASCADES)
        return Cascade.load(Path(__file__).parent / "cascades" / PACKAGED_CASCADES[key])
    path = Path(text)
    if not path.exists():
        raise MissingFileError(
            f"cascade not found: {text!r} (expected opencv:NAME, ours:NAME or a file path)"
        )
    path = _cascade_file(path)
    head = path.read_bytes()[:512].lstrip()
    if head.startswith(b"{"):
        return Cascade.load(path)
    return load_opencv_cascade(path)
