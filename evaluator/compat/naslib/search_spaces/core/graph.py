"""``naslib.search_spaces.core.graph.Graph``: here simply ``torch.nn.Module``.

Submissions use ``Graph`` for type hints; the models they receive are the exact benchmark
networks built by ``zcproxies.build`` (plain ``nn.Module``s, not NASLib graphs), so
``isinstance(graph, Graph)`` holds but NASLib-only methods (``parse``, ``get_hash``...) do not
exist.
"""

from torch.nn import Module as Graph

__all__ = ["Graph"]
