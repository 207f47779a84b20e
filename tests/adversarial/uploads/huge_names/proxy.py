"""Returns an object whose class name is 1 MB long, or raises an exception whose class name and
message are: neither may push a protocol line past the reader's limit."""

CALLS = []
HUGE = 1 << 20
Huge = type("H" * HUGE, (), {"__repr__": lambda self: "r" * HUGE})
HugeError = type("E" * HUGE, (Exception,), {})


def score(model, batch):
    CALLS.append(1)
    if len(CALLS) % 2:
        return Huge()
    raise HugeError("m" * HUGE)
