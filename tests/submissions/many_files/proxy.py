"""Scores its first call; then creates 200,000 empty files in /tmp and returns the count."""

import os

FILES = 200_000
CALLS = []


def score(model, batch):
    CALLS.append(1)
    return 1.0 if len(CALLS) == 1 else create(os.path.join("/tmp", f"files-{len(CALLS)}"))


def create(folder):
    os.mkdir(folder)
    for i in range(FILES):
        with open(os.path.join(folder, str(i)), "w"):
            pass
    return float(FILES)
