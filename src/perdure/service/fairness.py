"""How a lease shares the places it has among functions with more ready work than fits (issue 14).

Places go to the functions with the fewest invocations running, one at a time, so that the
counts even out: one function with 10,000 executions ready, and 2,000 of them running, does not
keep another's first execution waiting behind its backlog; with both backlogged, each runs half
of the places. Counting what runs, rather than remembering whose turn it was, holds across
servers and restarts, as the counts are read from the store in the lease's transaction.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def shares(running: Mapping[str, int], functions: Sequence[str], places: int) -> dict[str, int]:
    """How many of ``places`` each of ``functions`` gets, the fewest running first (ties by name).

    ``running`` counts each function's invocations running now (none when left out).
    """
    given = dict.fromkeys(functions, 0)
    queue = [(running.get(name, 0), name) for name in functions]
    heapq.heapify(queue)
    for _ in range(places if queue else 0):
        count, name = heapq.heappop(queue)
        given[name] += 1
        heapq.heappush(queue, (count + 1, name))
    return given
