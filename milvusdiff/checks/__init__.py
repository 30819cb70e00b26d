"""Checks of what Milvus answers, against the PostgreSQL shadow: query-check and search-check.

Snapshots prove the data at rest; these prove the answers. `query_check` runs a filter on both
stores and diffs the result sets with the compare engine (`query_check_random` does it for
generated filters); `search_check` scores Milvus' nearest-neighbour answers against the exact
answer computed over the shadow. Each returns a result whose `exit_code` follows compare's
convention (0 nothing found, 1 found), and raises a MilvusDiffError for trouble.
"""

from milvusdiff.checks.query_check import QueryCheckResult, query_check
from milvusdiff.checks.query_random import RandomCheckResult, query_check_random
from milvusdiff.checks.search_check import SearchCheckResult, search_check

__all__ = [
    "QueryCheckResult",
    "RandomCheckResult",
    "SearchCheckResult",
    "query_check",
    "query_check_random",
    "search_check",
]
