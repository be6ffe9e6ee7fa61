"""Viola-Jones: integral images, Haar features, AdaBoost, attentional cascades, detection.

Papers: Viola & Jones, "Rapid Object Detection using a Boosted Cascade of Simple Features",
CVPR 2001, and "Robust Real-Time Face Detection", IJCV 2004 (no arXiv ids). Tilted features:
Lienhart & Maydt, "An Extended Set of Haar-like Features for Rapid Object Detection", ICIP 2002.

Plain NumPy plus numba for the hot loops (window scanning, feature values, stump search);
no ``nn.Module``. OpenCV's Haar cascades load with :func:`load_opencv_cascade` and
``Cascade.detect`` gives ``cv2.CascadeClassifier.detectMultiScale``'s exact boxes (default
``mode="opencv"``: image pyramid, as OpenCV) or scans with the paper's scaled features
(``mode="paper"``); :func:`train_cascade` trains our own cascade (AdaBoost stumps, attentional
cascade, bootstrapped negatives) and ``load_cascade("ours:lfw_24")`` loads the one shipped.

Modules: :mod:`.integral` (integral images), :mod:`.haar` (features), :mod:`.adaboost`,
:mod:`.cascade` (data + JSON/XML I/O), :mod:`.detect`, :mod:`.postprocess` (grouping, NMS,
TP/FP), :mod:`.train`, :mod:`.demo`.
"""

from modernvision.classic.viola_jones.adaboost import (
    AdaBoost,
    AdaBoostResult,
    adaboost,
    best_stumps,
    stump_threshold,
)
from modernvision.classic.viola_jones.cascade import (
    Cascade,
    DecisionTree,
    HaarFeatures,
    Stage,
    load_cascade,
    load_opencv_cascade,
    opencv_cascade_path,
)
from modernvision.classic.viola_jones.detect import (
    DetectionStats,
    check_gray,
    detect_multiscale,
    to_gray,
)
from modernvision.classic.viola_jones.haar import (
    FEATURE_TYPES,
    enumerate_features,
    feature_count,
    feature_values,
    window_integrals,
)
from modernvision.classic.viola_jones.integral import (
    integral_image,
    rect_sum,
    squared_integral_image,
    tilted_integral_image,
    tilted_rect_sum,
)
from modernvision.classic.viola_jones.postprocess import (
    DetectionMatch,
    box_iou,
    greedy_nms,
    group_rectangles,
    match_detections,
)
from modernvision.classic.viola_jones.train import (
    HELD_OUT_PHOTOS,
    MINING_PHOTOS,
    EvaluationReport,
    StageReport,
    TrainingReport,
    classify_windows,
    evaluate_cascade,
    face_free_photos,
    lfw_windows,
    mine_windows,
    resize_area,
    train_cascade,
    train_lfw_cascade,
)

__all__ = [
    "FEATURE_TYPES",
    "HELD_OUT_PHOTOS",
    "MINING_PHOTOS",
    "AdaBoost",
    "AdaBoostResult",
    "Cascade",
    "DecisionTree",
    "DetectionMatch",
    "DetectionStats",
    "EvaluationReport",
    "HaarFeatures",
    "Stage",
    "StageReport",
    "TrainingReport",
    "adaboost",
    "best_stumps",
    "box_iou",
    "check_gray",
    "classify_windows",
    "detect_multiscale",
    "enumerate_features",
    "evaluate_cascade",
    "face_free_photos",
    "feature_count",
    "feature_values",
    "greedy_nms",
    "group_rectangles",
    "integral_image",
    "lfw_windows",
    "load_cascade",
    "load_opencv_cascade",
    "match_detections",
    "mine_windows",
    "opencv_cascade_path",
    "rect_sum",
    "resize_area",
    "squared_integral_image",
    "stump_threshold",
    "tilted_integral_image",
    "tilted_rect_sum",
    "to_gray",
    "train_cascade",
    "train_lfw_cascade",
    "window_integrals",
]
