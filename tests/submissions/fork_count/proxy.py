"""Forks up to 200 sleeping children and returns how many forks succeeded."""

import os
import time

ATTEMPTS = 200


def score(model, batch):
    children = []
    for _ in range(ATTEMPTS):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    return float(len(children))
