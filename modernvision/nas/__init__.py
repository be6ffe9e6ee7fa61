"""Neural architecture search with an RNN controller trained by REINFORCE (Zoph & Le 2017),
and random search over the same space as its baseline.

``search(budget, out_dir, method="controller")`` samples ``budget`` child networks, trains
each briefly, writes every child's architecture and validation accuracy, and the best one,
which ``create("nas_cnn", arch=...)`` rebuilds. ``modernvision nas`` is its command line.
"""

from modernvision.nas.child import DEFAULT_ARCH, NASChild, SearchSpace, nas_cnn, validate_arch
from modernvision.nas.controller import Controller
from modernvision.nas.search import SearchResult, random_arch, search

__all__ = ["DEFAULT_ARCH", "Controller", "NASChild", "SearchResult", "SearchSpace", "nas_cnn",
           "random_arch", "search", "validate_arch"]
