"""``naslib.search_spaces``: only ``core.graph.Graph`` is provided."""
