"""NASLib's evaluator habits on the graph: clone, prepare_evaluation, parse, then count."""

from naslib.predictors.predictor import Predictor
from naslib.search_spaces.core.graph import Graph


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "params_clone"

    def query(self, graph: Graph, dataloader=None) -> float:
        assert graph.get_type() == self.ss_type == graph.space_name
        assert graph.num_classes > 1 and "Graph" in graph.modules_str()
        model = graph.clone()
        model.prepare_evaluation()
        model.parse()
        model.set_spec(graph.get_hash())
        return count_parameters(model) / 1e6
