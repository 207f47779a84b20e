"""NASWOT's log-determinant over the first TWO batches of the loader (128 images)."""

import numpy as np
import torch
from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "naswot_2x"
        self.num_batches = 2

    def query(self, graph, dataloader=None):
        batches = []
        for i, (x, _) in enumerate(dataloader):
            if i == self.num_batches:
                break
            batches.append(x)
        assert len(batches) == self.num_batches, "the loader must have several batches"
        x = torch.cat(batches)
        kernel = np.zeros((x.shape[0], x.shape[0]))

        def hook(module, inp, out):
            codes = (inp[0].view(inp[0].size(0), -1) > 0).float()
            k = codes @ codes.t() + (1.0 - codes) @ (1.0 - codes).t()
            kernel[:] = kernel + k.cpu().numpy()

        handles = [
            m.register_forward_hook(hook) for m in graph.modules() if isinstance(m, torch.nn.ReLU)
        ]
        with torch.no_grad():
            graph(x)
        for h in handles:
            h.remove()
        _, logdet = np.linalg.slogdet(kernel)
        return logdet
