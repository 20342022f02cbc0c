"""One least-squares solver for unknowns tied by measured differences.

Tile gains, tile positions and section translations are all the same problem:
find x (n, d) with x[a] - x[b] ≈ m for every measured pair, each with a weight,
plus optional weak ties (x[i] ≈ x[i-1], x ≈ 0) that fix what the pairs leave
free. Solved as a sparse weighted least-squares system (LSQR), which also gives
the minimum-norm answer when the system leaves a constant free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import lsqr

Difference = tuple[int, int, Sequence[float] | float, float]  # (a, b, m, weight): x[a] - x[b] = m


def solve_differences(n: int, eqs: Sequence[Difference], prior: float = 0.0,
                      smooth: float = 0.0, dims: int | None = None) -> np.ndarray:
    """x (n, d) minimising sum w²|x[a] - x[b] - m|² + smooth² sum |x[i] - x[i-1]|²
    + prior² sum |x[i]|².

    ``m`` is a scalar (returned as shape (n,)) or a vector of length d (shape (n, d));
    ``dims`` says which when there may be no equations. With nothing to solve, zeros.

    >>> solve_differences(3, [(1, 0, 2.0, 1.0), (2, 1, 3.0, 1.0)], prior=1e-6).round(3)
    array([-2.333, -0.333,  2.667])
    """
    if dims is None:
        dims = len(eqs[0][2]) if eqs and np.ndim(eqs[0][2]) else 0  # type: ignore[arg-type]
    scalar = dims == 0
    d = max(dims, 1)
    rows, cols, vals, rhs = [], [], [], []
    r = 0
    for a, b, m, w in eqs:
        rows += [r, r]
        cols += [a, b]
        vals += [w, -w]
        rhs.append(w * np.atleast_1d(np.asarray(m, float)))
        r += 1
    for i in range(1, n):
        if smooth > 0:
            rows += [r, r]
            cols += [i, i - 1]
            vals += [smooth, -smooth]
            rhs.append(np.zeros(d))
            r += 1
    for i in range(n):
        if prior > 0:
            rows.append(r)
            cols.append(i)
            vals.append(prior)
            rhs.append(np.zeros(d))
            r += 1
    if r == 0:
        return np.zeros(n) if scalar else np.zeros((n, d))
    a_mat = sparse.csr_matrix((vals, (rows, cols)), shape=(r, n))
    b_mat = np.asarray(rhs).reshape(r, d)
    x = np.stack([lsqr(a_mat, b_mat[:, c], atol=1e-12, btol=1e-12, iter_lim=20 * n + 100)[0]
                  for c in range(d)], 1)
    return x[:, 0] if scalar else x
