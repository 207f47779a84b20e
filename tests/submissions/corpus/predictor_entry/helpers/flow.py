"""Synaptic flow computed by NASLib's ZeroCost (kept in a helper package)."""

from naslib.predictors.zerocost import ZeroCost

_SYNFLOW = ZeroCost(method_type="synflow")


def synflow(graph, loader):
    return _SYNFLOW.query(graph, dataloader=loader)
