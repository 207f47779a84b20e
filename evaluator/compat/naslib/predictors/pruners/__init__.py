"""``naslib.predictors.pruners`` (the competition branch's path of zero-cost-nas' pruners)."""
