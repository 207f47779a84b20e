"""Compatibility shims put on the WORKER's ``sys.path`` only (never installed as top-level names).

``compat/naslib`` lets 2022 competition submissions run unchanged: they import
``naslib.predictors.predictor.Predictor`` and ``naslib.search_spaces.core.graph.Graph``. The
directory is appended to the end of ``sys.path``, so a real NASLib installed in the environment
wins; the evaluator process itself never has it on its path.
"""
