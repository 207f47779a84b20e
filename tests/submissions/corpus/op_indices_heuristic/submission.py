"""A hand-made score from the cell encoding (NB201 op indices) plus a parameter tie-break."""

from naslib.predictors.predictor import Predictor
from naslib.search_spaces.nasbench201.conversions import (
    OP_NAMES,
    convert_naslib_to_str,
    convert_str_to_op_indices,
)

WEIGHTS = {"ReLUConvBN3x3": 3.0, "ReLUConvBN1x1": 1.5, "AvgPool1x1": 0.5, "Identity": 0.2}


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "op_heuristic"

    def query(self, graph, dataloader=None):
        ops = graph.get_op_indices()
        assert isinstance(ops, list) and tuple(ops) == graph.get_hash()
        assert tuple(convert_str_to_op_indices(convert_naslib_to_str(graph))) == graph.get_hash()
        score = sum(WEIGHTS.get(OP_NAMES[i], 0.0) for i in ops)
        params = sum(p.numel() for p in graph.parameters())
        return score + params * 1e-9
