"""Distributed least squares: R-only TSQR over row blocks, then a small SVD or ridge solve."""

from pipeline.linalg.solve import (
    LeastSquaresFactor,
    LeastSquaresSolution,
    check_regularisation,
    default_chunk_rows,
    factorize,
    lstsq,
)
from pipeline.linalg.selection import pivoted_columns
from pipeline.linalg.tsqr import merge_factors, reduce_block, tsqr_factor

__all__ = [
    "LeastSquaresFactor",
    "LeastSquaresSolution",
    "check_regularisation",
    "default_chunk_rows",
    "factorize",
    "lstsq",
    "merge_factors",
    "pivoted_columns",
    "reduce_block",
    "tsqr_factor",
]
