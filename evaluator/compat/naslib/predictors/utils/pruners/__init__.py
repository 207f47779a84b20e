"""``naslib.predictors.utils.pruners`` (NASLib Develop's path): the same modules as
``naslib.predictors.pruners`` (the competition branch's path)."""
