"""Stand-in for NASLib (automl-conf-competition branch) backed by zcp: what 2022 competition
submissions import. Put on the evaluator WORKER's ``sys.path`` only (appended: a real NASLib wins).

Modules: ``predictors`` (``Predictor``, ``ZeroCost``), ``predictors.pruners`` (the competition
branch's path) and ``predictors.utils.pruners`` (later branches): ``predictive.find_measures``,
``measures`` and ``p_utils``; ``search_spaces`` (the graph classes a query receives, built by
``zcproxies.spaces.naslib_graph``), ``search_spaces.core.graph.Graph``,
``search_spaces.nasbench201.conversions``; ``utils`` (``set_seed``, ``AttrDict``, ...).
What differs from NASLib: docs/competition.md.
"""
