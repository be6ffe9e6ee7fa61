"""Model analysis: per-layer parameters, MACs, activation memory and receptive fields."""

from modernvision.analysis.summary import LayerRow, Summary, summarize

__all__ = ["LayerRow", "Summary", "summarize"]
