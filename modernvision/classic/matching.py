"""Instance-level detection: find one object, given a single reference photo, in scene images.

Paper: D. G. Lowe, "Distinctive Image Features from Scale-Invariant Keypoints", IJCV 2004
(no arXiv id). The pipeline of its Section 7, as the course lab runs it:

1. SIFT keypoints and 128-d descriptors in both images (OpenCV's ``cv2.SIFT_create``, default
   parameters: its implementation of Lowe's detector, not re-derived here).
2. For every scene keypoint, its two nearest reference descriptors from this package's kd-tree
   (:class:`modernvision.classic.kdtree.KDTree`): exact search by default, or best-bin-first with a
   ``checks`` budget as Lowe does (Sec. 7.2).
3. Lowe's ratio test (Sec. 7.1): keep a match when ``d1 < ratio * d2``. Lowe rejects above 0.8;
   the lab's default is 0.75.
4. Geometric verification. Lowe clusters pose votes with a Hough transform and fits an affine
   model (Secs. 7.3-7.4); the lab, for a planar object, fits a homography with this package's
   RANSAC (:mod:`modernvision.classic.ransac`) instead.
5. The object is present when the homography has at least ``min_inliers`` inliers and maps the
   reference outline to a convex quadrilateral with the same orientation (a folded or mirrored
   outline is no view of a rigid planar object; this check is the module's addition).
   The outline (the reference image's corner pixels) is projected into the scene.

Coordinates are OpenCV's: x right, y down, the centre of the top-left pixel at (0, 0).
Colour images are read as RGB (as ``load_photo`` and scikit-image return them) and converted
to grey with ``cv2.COLOR_RGB2GRAY`` before SIFT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from modernvision._errors import InvalidArgumentError
from modernvision.classic.kdtree import KDTree
from modernvision.classic.ransac import project_points, ransac_homography

__all__ = [
    "Match",
    "ObjectFinder",
    "corner_errors",
    "draw_match",
    "find_object",
    "image_corners",
    "ratio_test",
    "sift_features",
]


def _to_grey(image: np.ndarray, name: str) -> np.ndarray:
    """uint8 grey image from a grey or RGB(A) array; floats are taken as values in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InvalidArgumentError(
            f"{name}: expected a grey (H, W) or colour (H, W, 3|4) image, got shape {image.shape}"
        )
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise InvalidArgumentError(
            f"{name}: expected an image of at least 8x8 pixels, got shape {image.shape}"
        )
    if image.dtype == np.uint8:
        pass
    elif image.dtype.kind == "f":
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise InvalidArgumentError(f"{name}: a float image must hold values in [0, 1]")
        image = np.round(image * 255).astype(np.uint8)
    else:
        raise TypeError(f"{name}: expected dtype uint8 or float in [0, 1], got {image.dtype}")
    if image.ndim == 3:
        code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    return np.ascontiguousarray(image)


def sift_features(
    image: np.ndarray, *, n_features: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SIFT keypoints and descriptors from OpenCV.

    Args:
        image: grey ``(H, W)`` or RGB ``(H, W, 3)``, uint8 (or float in [0, 1]).
        n_features: keep the strongest this many keypoints (0: all, OpenCV's default).

    Returns:
        ``points`` ``(N, 2)`` float64 (x, y); ``descriptors`` ``(N, 128)`` float32 (OpenCV's
        integer-valued SIFT descriptors); ``sizes`` ``(N,)`` keypoint diameters in pixels.
    """
    return _sift(_to_grey(image, "image"), n_features)


def _sift(grey: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sift = cv2.SIFT_create(nfeatures=int(n_features))
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    if descriptors is None or len(keypoints) == 0:
        return np.empty((0, 2)), np.empty((0, 128), np.float32), np.empty(0)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float64).reshape(-1, 2)
    sizes = np.array([kp.size for kp in keypoints], dtype=np.float64)
    return points, np.ascontiguousarray(descriptors, dtype=np.float32), sizes


def ratio_test(
    tree: KDTree, queries: np.ndarray, *, ratio: float = 0.75, checks: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test: each query's nearest neighbour, kept if ``d1 < ratio * d2``.

    Args:
        tree: kd-tree over the database descriptors (at least 2 of them).
        queries: ``(Q, D)`` descriptors.
        ratio: in (0, 1].
        checks: ``None`` for exact neighbours, else the best-bin-first budget.

    Returns:
        ``query_indices`` ``(M,)`` and ``database_indices`` ``(M,)`` of the kept matches.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio: expected a number in (0, 1], got {ratio!r}")
    if tree.n_points < 2:
        raise ValueError("tree: the ratio test needs at least 2 database descriptors")
    if len(queries) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    dist, idx = tree.query(queries, k=2, checks=checks)
    keep = np.flatnonzero(dist[:, 0] < ratio * dist[:, 1])
    return keep.astype(np.int64), idx[keep, 0]


def image_corners(shape: tuple[int, ...]) -> np.ndarray:
    """The outline of an image of this shape: its corner pixel centres, (4, 2) TL, TR, BR, BL."""
    height, width = shape[0], shape[1]
    return np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64
    )


def corner_errors(
    homography: np.ndarray, reference_homography: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """Distances, in pixels, between the image corners mapped by two homographies.

    Args:
        homography: the estimate, ``(3, 3)``.
        reference_homography: the ground truth, ``(3, 3)``.
        shape: shape of the source image (its corners are mapped).

    Returns:
        ``(4,)``: TL, TR, BR, BL.
    """
    corners = image_corners(shape)
    return np.linalg.norm(
        project_points(homography, corners) - project_points(reference_homography, corners), axis=1
    )


def _plausible_outline(reference: np.ndarray, scene: np.ndarray) -> bool:
    """Convex, finite, same orientation as the reference outline, not collapsed."""
    if not np.isfinite(scene).all():
        return False

    def turns(quad: np.ndarray) -> np.ndarray:
        edges = np.roll(quad, -1, axis=0) - quad
        nxt = np.roll(edges, -1, axis=0)
        return edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]

    ref, got = turns(reference), turns(scene)
    area = 0.5 * abs(
        np.sum(scene[:, 0] * np.roll(scene[:, 1], -1) - np.roll(scene[:, 0], -1) * scene[:, 1])
    )
    return bool(np.all(np.sign(got) == np.sign(ref)) and area >= 1.0)


@dataclass(frozen=True)
class Match:
    """Where (and whether) the reference object is in a scene.

    Attributes:
        found: the object is declared present.
        homography: ``(3, 3)`` mapping reference pixels to scene pixels; ``None`` when not found.
        inliers: number of ratio-test matches consistent with the best homography RANSAC found
            (reported also when that is below ``min_inliers``).
        corners: ``(4, 2)`` the reference outline (TL, TR, BR, BL corner pixels) in the scene;
            ``None`` when not found.
        reference_points: ``(M, 2)`` reference keypoints of the ratio-test matches.
        scene_points: ``(M, 2)`` their scene keypoints.
        inlier_mask: ``(M,)`` bool, which of those matches are RANSAC inliers.
        num_keypoints: SIFT keypoints in (reference, scene).
    """

    found: bool
    homography: np.ndarray | None
    inliers: int
    corners: np.ndarray | None
    reference_points: np.ndarray = field(repr=False)
    scene_points: np.ndarray = field(repr=False)
    inlier_mask: np.ndarray = field(repr=False)
    num_keypoints: tuple[int, int] = (0, 0)

    @property
    def num_matches(self) -> int:
        """Matches that passed the ratio test."""
        return int(self.reference_points.shape[0])


class ObjectFinder:
    """Finds one reference object in any number of scenes (the reference is indexed once).

    Args:
        reference: the object's photo, grey or RGB, uint8 (or float in [0, 1]).
        ratio: Lowe's ratio-test threshold.
        min_inliers: homography inliers needed to declare the object present.
        ransac_threshold: largest transfer error of an inlier, in scene pixels.
        checks: ``None`` for exact nearest neighbours, else the best-bin-first budget.
        n_features: SIFT keypoints kept per image (0: all).
        seed: seed of RANSAC's sampling.
    """

    def __init__(
        self,
        reference: np.ndarray,
        *,
        ratio: float = 0.75,
        min_inliers: int = 10,
        ransac_threshold: float = 2.0,
        checks: int | None = None,
        n_features: int = 0,
        seed: int = 0,
    ) -> None:
        if not 0 < ratio <= 1:
            raise InvalidArgumentError(f"ratio: expected a number in (0, 1], got {ratio!r}")
        if not isinstance(min_inliers, (int, np.integer)) or min_inliers < 4:
            raise InvalidArgumentError(
                f"min_inliers: expected an integer >= 4 (a homography needs 4 "
                f"points), got {min_inliers!r}"
            )
        if not ransac_threshold > 0:
            raise InvalidArgumentError(
                f"ransac_threshold: expected a positive number of pixels, got {ransac_threshold!r}"
            )
        self.ratio = float(ratio)
        self.min_inliers = int(min_inliers)
        self.ransac_threshold = float(ransac_threshold)
        self.checks = checks
        self.n_features = int(n_features)
        self.seed = seed
        grey = _to_grey(reference, "reference")
        self.reference_shape = grey.shape
        self.reference_points, descriptors, _ = _sift(grey, self.n_features)
        self._tree = KDTree(descriptors) if len(descriptors) >= 2 else None

    def find(self, scene: np.ndarray) -> Match:
        """Match the reference against ``scene`` (grey or RGB) and verify with RANSAC."""
        scene_points, scene_desc, _ = _sift(_to_grey(scene, "scene"), self.n_features)
        n_kp = (int(self.reference_points.shape[0]), int(scene_points.shape[0]))
        if self._tree is None or len(scene_desc) == 0:
            return _absent(np.empty((0, 2)), np.empty((0, 2)), np.zeros(0, bool), 0, n_kp)
        q_idx, r_idx = ratio_test(self._tree, scene_desc, ratio=self.ratio, checks=self.checks)
        ref_pts, scn_pts = self.reference_points[r_idx], scene_points[q_idx]
        result = ransac_homography(
            ref_pts, scn_pts, threshold=self.ransac_threshold, seed=self.seed
        )
        inliers = result.num_inliers
        if result.homography is None or inliers < self.min_inliers:
            return _absent(ref_pts, scn_pts, result.inlier_mask, inliers, n_kp)
        outline = image_corners(self.reference_shape)
        corners = project_points(result.homography, outline)
        if not _plausible_outline(outline, corners):
            return _absent(ref_pts, scn_pts, result.inlier_mask, inliers, n_kp)
        return Match(
            True, result.homography, inliers, corners, ref_pts, scn_pts, result.inlier_mask, n_kp
        )


def _absent(ref_pts, scn_pts, mask, inliers, n_kp) -> Match:
    return Match(False, None, int(inliers), None, ref_pts, scn_pts, mask, n_kp)


def find_object(
    reference: np.ndarray,
    scene: np.ndarray,
    *,
    ratio: float = 0.75,
    min_inliers: int = 10,
    ransac_threshold: float = 2.0,
    checks: int | None = None,
    seed: int = 0,
) -> Match:
    """Find the object of ``reference`` in ``scene`` (SIFT, kd-tree, ratio test, RANSAC).

    Args:
        reference: the object's photo, grey or RGB, uint8 (or float in [0, 1]).
        scene: the image to search, same conventions.
        ratio: Lowe's ratio-test threshold.
        min_inliers: homography inliers needed to declare the object present.
        ransac_threshold: largest transfer error of an inlier, in scene pixels.
        checks: ``None`` for exact nearest neighbours, else the best-bin-first budget.
        seed: seed of RANSAC's sampling.

    Returns:
        A :class:`Match`.

    Example:
        >>> m = find_object(box, box_in_scene)
        >>> m.found, m.inliers, m.corners.round()
    """
    finder = ObjectFinder(
        reference,
        ratio=ratio,
        min_inliers=min_inliers,
        ransac_threshold=ransac_threshold,
        checks=checks,
        seed=seed,
    )
    return finder.find(scene)


def draw_match(
    scene: np.ndarray,
    match: Match,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    thickness: int = 3,
) -> np.ndarray:
    """The scene (as RGB uint8) with the projected outline and the inlier keypoints drawn.

    Args:
        scene: the scene image the match came from.
        match: from :func:`find_object`.
        color: RGB of the outline; inliers are drawn in yellow, other matches in red.
        thickness: outline width in pixels.
    """
    grey_or_rgb = scene
    if scene.dtype != np.uint8:
        grey_or_rgb = np.round(np.clip(scene, 0, 1) * 255).astype(np.uint8)
    canvas = (
        cv2.cvtColor(grey_or_rgb, cv2.COLOR_GRAY2RGB)
        if grey_or_rgb.ndim == 2
        else np.ascontiguousarray(grey_or_rgb[..., :3]).copy()
    )
    for (x, y), inlier in zip(match.scene_points, match.inlier_mask):
        cv2.circle(
            canvas,
            (int(round(x)), int(round(y))),
            3,
            (255, 255, 0) if inlier else (255, 0, 0),
            1,
            cv2.LINE_AA,
        )
    if match.found and match.corners is not None:
        pts = np.round(match.corners).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], True, color, thickness, cv2.LINE_AA)
    return canvas
