"""Raises an exception whose message holds a lone surrogate (not encodable as UTF-8)."""


def score(model, batch):
    raise ValueError("\ud800 is half of a character")
