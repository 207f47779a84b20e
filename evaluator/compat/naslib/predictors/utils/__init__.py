"""``naslib.predictors.utils``: the later NASLib branches' home of the pruners."""
