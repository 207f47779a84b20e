"""Errors of the AutoDL package: all are ``zcproxies`` errors, so the ``zcp`` CLI reports them."""

from __future__ import annotations

from zcproxies.errors import DataError, ZcpError


class FormatError(DataError):
    """An AutoDL dataset file (TFRecord, record, metadata, solution) that breaks the format.

    The message names the file and, for records, the record index and byte offset.
    """


class ScoringError(ZcpError, ValueError):
    """Solution/prediction arrays or a learning curve that the challenge's scoring cannot score."""
