"""A real fork bomb (every process forks forever), but only under a process-count cap."""

import os
import resource


def score(model, batch):
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if os.getuid() == 0 or soft == resource.RLIM_INFINITY or soft > 1000:
        raise RuntimeError("refusing to fork-bomb without a binding process cap")
    while True:
        os.fork()
