"""Competition form with a misnamed class."""


class MyPredictor:
    method_type = "misnamed"

    def query(self, graph, dataloader=None):
        return 1.0
