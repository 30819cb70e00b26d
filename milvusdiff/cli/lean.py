"""Keep pandas out of a CLI process that never uses it.

pyarrow looks for pandas the first time it converts from numpy (`pa.array(ndarray)`: is it a pandas
Series?) and to numpy (its C++ converter's one-time setup), and imports it to find out: about 0.5 s of
a `milvusdiff compare` that takes about 1 s on small inputs. compare never uses pandas. Hiding it
during both first probes makes pyarrow record "no pandas"; an explicit pandas conversion later still
imports it (pyarrow retries the import whenever pandas is required), so nothing breaks, it only stops
being loaded for nothing. Only the CLI
does this: in a library process the user's own pandas objects must keep their pyarrow conversions.
"""

from __future__ import annotations

import sys


class _NoPandas:
    """A meta-path finder that refuses pandas (a None entry in sys.modules is not seen by pyarrow's
    compiled import)."""

    @staticmethod
    def find_spec(name: str, *_: object) -> None:
        if name == "pandas":
            raise ImportError("pandas is hidden from pyarrow's first probe")


def skip_pandas_probe() -> None:
    if "pandas" in sys.modules:
        return
    import numpy as np
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array(np.zeros(1)).to_numpy()
    finally:
        sys.meta_path.remove(finder)
