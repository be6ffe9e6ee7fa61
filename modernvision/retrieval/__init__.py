"""Identity retrieval: metrics (Recall@K, MAP@R), a kNN index (exact or faiss) and a persistent
gallery of enrolled identities (``modernvision gallery``)."""

from modernvision.retrieval.gallery import Gallery, ImageEmbedder, Match, enrol, vote
from modernvision.retrieval.index import BACKENDS, KNNIndex, exact_knn
from modernvision.retrieval.metrics import retrieval_metrics

__all__ = ["BACKENDS", "Gallery", "ImageEmbedder", "KNNIndex", "Match", "enrol", "exact_knn",
           "retrieval_metrics", "vote"]
