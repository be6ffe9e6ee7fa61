"""Training an attentional cascade, with negatives bootstrapped from face-free photos.

Paper: "Rapid Object Detection using a Boosted Cascade of Simple Features", Viola & Jones,
CVPR 2001, section 4 and Table 2 (the cascade training algorithm); IJCV 2004 section 5.

Each stage is an AdaBoost classifier (:mod:`.adaboost`) that grows one stump at a time. After
every new stump the stage threshold is lowered until the stage keeps at least a fraction ``d``
(``stage_detection_rate``) of the positives that reached it; the stage is finished once it
passes at most a fraction ``f`` (``stage_false_positive_rate``) of its negatives. Stages are
added until the product of the stage false-positive rates reaches ``target_false_positive_rate``
or no negative window survives. Each stage's negatives are *bootstrapped* as in the paper:
windows that the cascade built so far wrongly accepts, mined by scanning face-free photos at all
scales and positions (the same scan the detector does), sampled at random.

Departures from the paper, stated:

* The stage threshold is set on the training positives (as OpenCV's ``traincascade`` does)
  rather than on a separate validation set, so that the small ``lfw-subset`` is not split
  further; held-out rates are measured afterwards by :func:`evaluate_cascade`.
* Each stage boosts over a random subset (``pool_size``) of the full feature set, redrawn per
  stage, instead of all 162,336 features, to keep memory at ``pool_size x samples`` floats.
* Positives for stage ``i`` are those the first ``i`` stages accept (OpenCV's choice); the
  paper keeps all of them.
* Training also stops when fewer than ``min_negatives_per_stage`` negatives survive: with a
  small set of face-free photos, later stages would otherwise be fitted to a handful of windows.
* Windows the detector refuses before any stage (standard deviation <= 10 grey levels, as
  OpenCV's ``setWindow``) are left out of both training sets: they can never reach a stage.
* :func:`lfw_windows` augments the 70 training faces (crops, small rotations, zoom, mirror),
  since ``lfw-subset`` is tiny (the paper trained on 4,916 faces).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from modernvision._errors import InvalidArgumentError
from modernvision.classic.viola_jones._threads import parallel_map
from modernvision.classic.viola_jones.adaboost import AdaBoost
from modernvision.classic.viola_jones.cascade import Cascade, DecisionTree, HaarFeatures, Stage
from modernvision.classic.viola_jones.detect import (
    DetectionStats,
    _add_stats,
    _pack,
    _pyramid_level,
    _scan,
    _scan_level,
    _tables,
    check_gray,
    detect_multiscale,
    opencv_scales,
    to_gray,
)
from modernvision.classic.viola_jones.haar import (
    enumerate_features,
    feature_values,
    window_integrals,
)

__all__ = [
    "HELD_OUT_PHOTOS",
    "MINING_PHOTOS",
    "EvaluationReport",
    "StageReport",
    "TrainingReport",
    "classify_windows",
    "evaluate_cascade",
    "face_free_photos",
    "lfw_windows",
    "mine_windows",
    "resize_area",
    "train_cascade",
    "train_lfw_cascade",
]

# Face-free photos, mined for negatives during training: scikit-image samples by name and
# opencv-doc's examples/data files (``opencv:FILE``), each checked by eye to show no human
# face (drawn or real) ...
MINING_PHOTOS = (
    "rocket",
    "brick",
    "grass",
    "gravel",
    "coins",
    "moon",
    "horse",
    "page",
    "opencv:aero1.jpg",
    "opencv:aero3.jpg",
    "opencv:apple.jpg",
    "opencv:blox.jpg",
    "opencv:board.jpg",
    "opencv:building.jpg",
    "opencv:butterfly.jpg",
    "opencv:fruits.jpg",
    "opencv:leuvenA.jpg",
    "opencv:orange.jpg",
    "opencv:smarties.png",
    "opencv:starry_night.jpg",
    "opencv:stuff.jpg",
    "opencv:sudoku.png",
    "opencv:rubberwhale1.png",
    "opencv:cards.png",
    "opencv:ela_original.jpg",
    "opencv:licenseplate_motion.jpg",
    "opencv:text_defocus.jpg",
)
# ... and kept apart to measure false positives per window after training.
HELD_OUT_PHOTOS = ("chelsea", "coffee", "text", "opencv:home.jpg", "opencv:squirrel_cls.jpg")


# ---------------------------------------------------------------------------------------------
# data


def resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaging resize (each output pixel the mean of the input area it covers).

    Args:
        image: ``[H, W]`` or ``[N, H, W]`` array.
        size: ``(width, height)`` of the output.

    Returns:
        uint8 when the input is uint8 (rounded), float64 otherwise.
    """

    def weights(n_in: int, n_out: int) -> np.ndarray:
        edges = np.arange(n_out + 1) * (n_in / n_out)
        lo, hi = edges[:-1, None], edges[1:, None]
        px = np.arange(n_in)[None]
        overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0, None)
        return overlap / overlap.sum(axis=1, keepdims=True)

    arr = np.asarray(image)
    w_out, h_out = size
    if w_out < 1 or h_out < 1:
        raise ValueError(f"size must be positive, got {size}")
    wy = weights(arr.shape[-2], h_out)
    wx = weights(arr.shape[-1], w_out)
    out = wy @ arr.astype(np.float64) @ wx.T
    if arr.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def lfw_windows(
    split: str, label: int = 1, *, window: int = 24, augment: bool = False
) -> np.ndarray:
    """``lfw-subset`` windows resized from 25x25 to ``window x window``.

    Args:
        split: ``train``, ``val``, ``test`` or ``all``.
        label: 1 for faces, 0 for the non-face patches.
        window: output side.
        augment: 16 windows per image: the resized one, the four one-pixel-shifted crops,
            rotations by +-8 degrees and a 1.08x zoom, each also mirrored.

    Returns:
        uint8 ``[N, window, window]``.
    """
    from modernvision.data import load_arrays

    ds = load_arrays("lfw-subset", split)
    imgs = ds.images[ds.labels == label]
    out = [resize_area(imgs, (window, window))]
    if augment:
        if imgs.shape[1] - window != 1:
            raise ValueError("augment=True crops 24x24 windows from the 25x25 lfw images")
        out += [imgs[:, dy : dy + window, dx : dx + window] for dy in (0, 1) for dx in (0, 1)]
        out += [
            _similarity_warp(imgs, window, angle, zoom)
            for angle, zoom in ((8.0, 1.0), (-8.0, 1.0), (0.0, 1.08))
        ]
        out += [o[:, :, ::-1] for o in out]
    return np.ascontiguousarray(np.concatenate(out))


def _similarity_warp(images: np.ndarray, size: int, angle_deg: float, zoom: float) -> np.ndarray:
    """Rotate/zoom ``[N, H, W]`` images about their centre into ``size x size`` (bilinear,
    borders clamped)."""
    n, h, w = images.shape
    a = np.deg2rad(angle_deg)
    c = (np.arange(size) + 0.5) * (w / size) - w / 2  # output pixel centres, input scale
    yy, xx = np.meshgrid(c, c, indexing="ij")
    sx = (np.cos(a) * xx + np.sin(a) * yy) / zoom + w / 2 - 0.5
    sy = (-np.sin(a) * xx + np.cos(a) * yy) / zoom + h / 2 - 0.5
    x0 = np.clip(np.floor(sx).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(sy).astype(int), 0, h - 2)
    fx = np.clip(sx - x0, 0, 1)
    fy = np.clip(sy - y0, 0, 1)
    img = images.astype(np.float64)
    top = img[:, y0, x0] * (1 - fx) + img[:, y0, x0 + 1] * fx
    bot = img[:, y0 + 1, x0] * (1 - fx) + img[:, y0 + 1, x0 + 1] * fx
    return np.clip(np.rint(top * (1 - fy) + bot * fy), 0, 255).astype(np.uint8)


def face_free_photos(
    names: Sequence[str] = MINING_PHOTOS, *, augment: bool = False
) -> list[np.ndarray]:
    """Grey photos that contain no human face.

    Args:
        names: ``modernvision.data.PHOTOS`` names, or ``opencv:FILE`` for a file of
            opencv-doc's ``examples/data``.
        augment: also return each photo's mirror image (still face-free: more windows to
            bootstrap from).
    """
    from modernvision.classic.viola_jones.draw import read_image
    from modernvision.data import load_photo, opencv_sample

    out = []
    for n in names:
        img = read_image(opencv_sample(n[7:])) if n.startswith("opencv:") else load_photo(n)
        g = to_gray(img)
        out += [g, np.ascontiguousarray(g[:, ::-1])] if augment else [g]
    return out


# ---------------------------------------------------------------------------------------------
# running a cascade on windows


def classify_windows(cascade: Cascade, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the cascade on ready-cut windows (the detector's kernel, one window per row).

    Args:
        cascade: the cascade.
        windows: uint8 ``[N, h, w]`` with ``(w, h) == cascade.window_size``.

    Returns:
        ``(accepted bool [N], features_evaluated int64 [N])``.
    """
    windows = np.asarray(windows)
    w, h = cascade.window_size
    if windows.ndim != 3 or windows.shape[1:] != (h, w) or windows.dtype != np.uint8:
        raise ValueError(
            f"windows must be uint8 [N, {h}, {w}], got {windows.dtype} {windows.shape}"
        )
    n = len(windows)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    # stacked vertically, window k is the h x w window at row k * h of one tall image
    tall = np.ascontiguousarray(windows.reshape(n * h, w))
    pk = _pack(cascade)
    mask, st = _scan(
        pk,
        _tables(tall, pk.has_tilted),
        cascade.window_size,
        nx=1,
        ny=n,
        step=h,
        opencv_skip=False,
        parallel=True,
    )
    return mask[:, 0].astype(bool), st[:, 2]


def _accept_all(window_size: tuple[int, int]) -> Cascade:
    """A one-stump cascade that accepts every window (the variance test still applies)."""
    feats = HaarFeatures(np.array([[[0, 0, 1, 1]] + [[0, 0, 0, 0]] * 3]), [[1, 0, 0, 0]], [False])
    return Cascade(window_size, feats, [Stage(0.0, [DecisionTree.stump(0, 0.0, 1.0, 1.0)])])


def mine_windows(
    cascade: Cascade | None,
    images: Sequence[np.ndarray],
    count: int,
    rng: np.random.Generator,
    *,
    window_size: tuple[int, int] = (24, 24),
    scale_factor: float = 1.2,
) -> tuple[np.ndarray, int, int]:
    """Bootstrap negatives: windows of face-free images that the cascade wrongly accepts.

    Scans every image at every scale and position as the detector does (OpenCV's pyramid and
    steps) and draws ``count`` of the accepted windows at random.

    Args:
        cascade: the cascade so far; ``None`` accepts every non-flat window.
        images: grey uint8 face-free images.
        count: how many windows to return (fewer when fewer are accepted).
        rng: random generator for the draw.
        window_size: ``(w, h)``; must be the cascade's.
        scale_factor: pyramid step.

    Returns:
        ``(windows uint8 [k, h, w], accepted, scanned)``: the windows, and how many windows
        were accepted and scanned in total.
    """
    cascade = _accept_all(window_size) if cascade is None else cascade
    win_w, win_h = cascade.window_size
    pk = _pack(cascade)
    smalls: list[np.ndarray] = []
    hits: list[np.ndarray] = []  # rows: (small image index, x, y)
    stats = DetectionStats()
    levels = []
    for img in images:
        gray = check_gray(img)
        levels += [
            (gray, sc)
            for sc in opencv_scales(
                (gray.shape[1], gray.shape[0]), (win_w, win_h), scale_factor, (0, 0), None
            )
        ]

    def scan(
        level: tuple[np.ndarray, np.float32],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        small = _pyramid_level(*level)
        return (small,) + _scan_level(pk, small, (win_w, win_h), level[1])

    for small, mask, st, step in parallel_map(scan, levels):
        _add_stats(stats, st)
        iy, ix = np.nonzero(mask)
        if len(iy):
            hits.append(np.stack([np.full_like(ix, len(smalls)), ix * step, iy * step], 1))
        smalls.append(small)
    scanned = stats.windows + stats.rejected_flat
    if not hits:
        return np.zeros((0, win_h, win_w), np.uint8), 0, scanned
    allhits = np.concatenate(hits)
    pick = (
        allhits
        if len(allhits) <= count
        else allhits[np.sort(rng.choice(len(allhits), count, replace=False))]
    )
    windows = np.stack([smalls[k][y : y + win_h, x : x + win_w] for k, x, y in pick])
    return windows, len(allhits), scanned


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class StageReport:
    """One trained stage.

    Attributes:
        stage: index.
        weak: number of stumps (features) in the stage.
        positives: positives the stage was trained on.
        negatives: bootstrapped negatives the stage was trained on.
        detection_rate: fraction of its positives the stage accepts.
        false_positive_rate: fraction of its negatives the stage accepts.
        threshold: the stage threshold.
        mined_accept_rate: before training this stage, the fraction of scanned windows of the
            mining photos that the cascade accepted.
        seconds: training time.
    """

    stage: int
    weak: int
    positives: int
    negatives: int
    detection_rate: float
    false_positive_rate: float
    threshold: float
    mined_accept_rate: float
    seconds: float


@dataclass
class TrainingReport:
    """What :func:`train_cascade` did (also stored in ``cascade.meta['training']``)."""

    stages: list[StageReport] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    stop_reason: str = ""
    seconds: float = 0.0

    @property
    def features_per_stage(self) -> list[int]:
        return [s.weak for s in self.stages]

    @property
    def estimated_false_positive_rate(self) -> float:
        return float(np.prod([s.false_positive_rate for s in self.stages]))

    def to_json(self) -> dict:
        return {
            "stages": [asdict(s) for s in self.stages],
            "params": self.params,
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
            "features_per_stage": self.features_per_stage,
            "estimated_false_positive_rate": self.estimated_false_positive_rate,
        }


def _stage_threshold(pos_scores: np.ndarray, detection_rate: float) -> np.float32:
    """Largest float32 threshold keeping at least ``detection_rate`` of the positives."""
    s = np.sort(pos_scores)
    k = int(np.floor((1.0 - detection_rate) * len(s) + 1e-9))
    t = s[min(k, len(s) - 1)]
    t32 = np.float32(t)
    if np.float64(t32) > t:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return t32


def train_cascade(
    positives: np.ndarray,
    negative_images: Sequence[np.ndarray],
    *,
    extra_negatives: np.ndarray | None = None,
    features: HaarFeatures | None = None,
    pool_size: int | None = 20000,
    stage_detection_rate: float = 0.995,
    stage_false_positive_rate: float = 0.5,
    target_false_positive_rate: float = 1e-5,
    max_stages: int = 12,
    max_weak_per_stage: int = 100,
    negatives_per_stage: int = 1000,
    min_negatives_per_stage: int = 1,
    mining_scale_factor: float = 1.2,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> Cascade:
    """Train an attentional cascade (paper's Table 2) on face windows and face-free photos.

    Args:
        positives: uint8 ``[P, h, w]`` object (face) windows; ``(w, h)`` is the window size.
        negative_images: grey uint8 photos without the object, mined for negatives.
        extra_negatives: optional uint8 ``[M, h, w]`` negative windows used in the first stage
            (with the mined ones).
        features: the feature pool; all five Haar types at every position and size by default.
        pool_size: features drawn at random from the pool for each stage (``None``: all).
        stage_detection_rate: ``d``, the minimum fraction of positives each stage keeps.
        stage_false_positive_rate: ``f``, the maximum fraction of negatives each stage passes.
        target_false_positive_rate: stop once the product of stage rates reaches this.
        max_stages: at most this many stages.
        max_weak_per_stage: a stage stops growing at this many stumps even above ``f``.
        negatives_per_stage: bootstrapped negatives per stage.
        min_negatives_per_stage: stop when fewer negatives than this survive (a stage
            trained on a handful of negatives mostly learns to reject faces).
        mining_scale_factor: pyramid step when scanning ``negative_images``.
        seed: seed for the feature draws and the negative sampling.
        log: called with one line per stage (e.g. ``print``).

    Returns:
        The cascade; ``cascade.meta['training']`` holds the :class:`TrainingReport` as JSON.
    """
    positives = np.asarray(positives)
    if positives.ndim != 3 or positives.dtype != np.uint8 or len(positives) < 2:
        raise ValueError(
            f"positives must be uint8 [P >= 2, h, w], got {positives.dtype} {positives.shape}"
        )
    h, w = positives.shape[1:]
    if extra_negatives is not None:
        extra_negatives = np.asarray(extra_negatives)
        if extra_negatives.ndim != 3 or extra_negatives.shape[1:] != (h, w):
            raise ValueError(f"extra_negatives must be [M, {h}, {w}], got {extra_negatives.shape}")
    if not negative_images:
        raise ValueError("negative_images must hold at least one face-free photo")
    for name, v in (
        ("stage_detection_rate", stage_detection_rate),
        ("stage_false_positive_rate", stage_false_positive_rate),
        ("target_false_positive_rate", target_false_positive_rate),
    ):
        if not 0 < v < 1:
            raise ValueError(f"{name} must be in (0, 1), got {v}")
    if max_stages < 1 or max_weak_per_stage < 1 or negatives_per_stage < 1:
        raise ValueError("max_stages, max_weak_per_stage and negatives_per_stage must be >= 1")
    pool = enumerate_features((w, h)) if features is None else features
    rng = np.random.default_rng(seed)
    report = TrainingReport(
        params={
            "positives": int(len(positives)),
            "negative_images": len(negative_images),
            "extra_negatives": 0 if extra_negatives is None else int(len(extra_negatives)),
            "feature_pool": int(len(pool)),
            "pool_size": pool_size,
            "stage_detection_rate": stage_detection_rate,
            "stage_false_positive_rate": stage_false_positive_rate,
            "target_false_positive_rate": target_false_positive_rate,
            "max_stages": max_stages,
            "max_weak_per_stage": max_weak_per_stage,
            "negatives_per_stage": negatives_per_stage,
            "min_negatives_per_stage": min_negatives_per_stage,
            "mining_scale_factor": mining_scale_factor,
            "seed": seed,
        }
    )
    t_start = time.perf_counter()
    pos_tables, pos_norm, pos_ok = window_integrals(positives)
    positives = positives[pos_ok]  # flat windows can never be detected: leave them out
    pos_tables, pos_norm = pos_tables[pos_ok], pos_norm[pos_ok]

    stages: list[Stage] = []
    used_features: dict[int, int] = {}  # pool index -> cascade feature index
    cascade: Cascade | None = None
    for si in range(max_stages):
        t0 = time.perf_counter()
        # positives still accepted, and bootstrapped negatives
        if cascade is not None:
            keep, _ = classify_windows(cascade, positives)
            positives, pos_tables, pos_norm = positives[keep], pos_tables[keep], pos_norm[keep]
        mined, accepted, scanned = mine_windows(
            cascade,
            negative_images,
            negatives_per_stage,
            rng,
            window_size=(w, h),
            scale_factor=mining_scale_factor,
        )
        negs = mined
        if si == 0 and extra_negatives is not None and len(extra_negatives):
            negs = np.concatenate([extra_negatives, mined])
        neg_tables, neg_norm, neg_ok = window_integrals(negs)
        neg_tables, neg_norm = neg_tables[neg_ok], neg_norm[neg_ok]
        if len(neg_tables) < max(min_negatives_per_stage, 1):
            report.stop_reason = (
                f"stage {si}: only {len(neg_tables)} negative windows "
                "survive the cascade (min_negatives_per_stage="
                f"{min_negatives_per_stage})"
            )
            break
        if len(positives) < 2:
            report.stop_reason = f"stage {si}: fewer than 2 positives left"
            break
        if pool_size is None or pool_size >= len(pool):
            cand = np.arange(len(pool))
        else:
            cand = np.sort(rng.choice(len(pool), pool_size, replace=False))
        sub = pool.subset(cand)
        tables = np.concatenate([pos_tables, neg_tables])
        norm = np.concatenate([pos_norm, neg_norm])
        labels = np.r_[np.ones(len(pos_tables), bool), np.zeros(len(neg_tables), bool)]
        values = feature_values(sub, tables, norm, (w, h))
        booster = AdaBoost(values, labels)
        n_pos = len(pos_tables)
        for _ in range(max_weak_per_stage):
            booster.step()
            thr = _stage_threshold(booster.scores[:n_pos], stage_detection_rate)
            fpr = float(np.mean(booster.scores[n_pos:] >= thr))
            if fpr <= stage_false_positive_rate:
                break
        det = float(np.mean(booster.scores[:n_pos] >= thr))
        weak = []
        for f, t, p, a, _e in booster.chosen:
            gi = int(cand[f])
            idx = used_features.setdefault(gi, len(used_features))
            left, right = (a, np.float32(0)) if p > 0 else (np.float32(0), a)
            weak.append(DecisionTree.stump(idx, t, left, right))
        stages.append(Stage(float(thr), weak))
        order = np.array(sorted(used_features, key=used_features.get))
        cascade = Cascade((w, h), pool.subset(order), list(stages))
        sr = StageReport(
            si,
            len(weak),
            n_pos,
            len(neg_tables),
            det,
            fpr,
            float(thr),
            accepted / max(scanned, 1),
            time.perf_counter() - t0,
        )
        report.stages.append(sr)
        if log is not None:
            log(
                f"stage {si}: {sr.weak} features, positives {sr.positives} "
                f"(kept {sr.detection_rate:.3f}), negatives {sr.negatives} "
                f"(passed {sr.false_positive_rate:.3f}), mined accept rate "
                f"{sr.mined_accept_rate:.2e}, {sr.seconds:.1f}s"
            )
        if report.estimated_false_positive_rate <= target_false_positive_rate:
            report.stop_reason = "target false-positive rate reached"
            break
    else:
        report.stop_reason = f"max_stages={max_stages} reached"
    if cascade is None:
        raise InvalidArgumentError(f"no stage could be trained: {report.stop_reason}")
    report.seconds = time.perf_counter() - t_start
    cascade.meta = {
        "trained_by": "modernvision.classic.viola_jones.train_cascade",
        "training": report.to_json(),
    }
    return cascade


# ---------------------------------------------------------------------------------------------
# evaluation


@dataclass
class EvaluationReport:
    """Held-out performance of a cascade.

    Attributes:
        detection_rate: fraction of the face windows the cascade accepts.
        faces: number of face windows.
        false_positives: negative windows accepted while scanning the face-free photos.
        windows: windows scanned in those photos (including those rejected as flat).
        features_per_window: average features evaluated per scanned window.
        features_per_cascade_window: average over windows that entered the cascade.
    """

    detection_rate: float
    faces: int
    false_positives: int
    windows: int
    features_per_window: float
    features_per_cascade_window: float

    @property
    def false_positives_per_window(self) -> float:
        return self.false_positives / max(self.windows, 1)


def evaluate_cascade(
    cascade: Cascade,
    faces: np.ndarray,
    negative_images: Sequence[np.ndarray],
    *,
    scale_factor: float = 1.1,
) -> EvaluationReport:
    """Detection rate on face windows and false positives per window on face-free photos.

    Args:
        cascade: the cascade.
        faces: uint8 ``[N, h, w]`` held-out face windows.
        negative_images: held-out grey photos without faces, scanned like the detector does
            (OpenCV mode, raw windows, no grouping).
        scale_factor: pyramid step of the scan.
    """
    accepted, _ = classify_windows(cascade, faces)
    fp, windows, feats, entered = 0, 0, 0, 0
    for img in negative_images:
        raw, st = detect_multiscale(
            cascade, img, scale_factor=scale_factor, min_neighbors=0, return_stats=True
        )
        fp += st.raw_detections
        windows += st.windows + st.rejected_flat
        feats += st.features
        entered += st.windows
    return EvaluationReport(
        float(accepted.mean()) if len(accepted) else 0.0,
        len(faces),
        fp,
        windows,
        feats / max(windows, 1),
        feats / max(entered, 1),
    )


# ---------------------------------------------------------------------------------------------
# the recipe behind the packaged cascade


LFW_RECIPE = {
    "pool_size": 12000,
    "max_stages": 30,
    "negatives_per_stage": 1500,
    "min_negatives_per_stage": 500,
    "stage_detection_rate": 0.997,
    "stage_false_positive_rate": 0.5,
    "target_false_positive_rate": 1e-7,
    "max_weak_per_stage": 200,
    "mining_scale_factor": 1.1,
    "seed": 0,
}


def train_lfw_cascade(
    log: Callable[[str], None] | None = None, **overrides: object
) -> tuple[Cascade, EvaluationReport]:
    """Train a 24x24 face cascade on ``lfw-subset`` and evaluate it on held-out data.

    Positives: the ``train`` split's 70 faces, augmented (crops, small rotations and zoom,
    mirrors: 1,120 windows). Negatives: the ``train`` split's non-face patches in the first
    stage, then windows bootstrapped from :data:`MINING_PHOTOS` and their mirror images.
    Held out: the ``val`` + ``test`` faces (30 windows, never seen) and the
    :data:`HELD_OUT_PHOTOS` for false positives per window.

    Args:
        log: called with one line per stage.
        overrides: any :func:`train_cascade` keyword, replacing :data:`LFW_RECIPE`'s value.

    Returns:
        ``(cascade, held-out evaluation)``; the evaluation is also stored in
        ``cascade.meta['held_out']``.
    """
    params = {**LFW_RECIPE, **overrides}
    if "negatives_per_stage" in overrides and "min_negatives_per_stage" not in overrides:
        # keep the recipe's ratio (a third) when only the number of negatives is changed
        params["min_negatives_per_stage"] = max(1, int(params["negatives_per_stage"]) // 3)
    cascade = train_cascade(
        lfw_windows("train", 1, augment=True),
        face_free_photos(MINING_PHOTOS, augment=True),
        extra_negatives=lfw_windows("train", 0),
        log=log,
        **params,  # type: ignore[arg-type]
    )
    faces = np.concatenate([lfw_windows("val", 1), lfw_windows("test", 1)])
    report = evaluate_cascade(cascade, faces, face_free_photos(HELD_OUT_PHOTOS))
    cascade.meta["recipe"] = {
        "positives": "lfw-subset train faces x16 (crops, +-8 deg, 1.08 zoom, mirrors)",
        "negatives": f"lfw-subset train non-faces + bootstrapped from {list(MINING_PHOTOS)} "
        "and their mirror images",
        "held_out": f"lfw-subset val+test faces (30); photos {list(HELD_OUT_PHOTOS)}",
        **{k: v for k, v in params.items()},
    }
    cascade.meta["held_out"] = {
        **asdict(report),
        "false_positives_per_window": report.false_positives_per_window,
    }
    return cascade, report
