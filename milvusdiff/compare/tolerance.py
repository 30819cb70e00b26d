"""The float tolerance of a comparison: apart from the comparator so that parsing options (the CLI's
`--help` included) loads neither numpy nor pyarrow."""

from __future__ import annotations

import math
from dataclasses import dataclass

from milvusdiff.errors import ToleranceError


@dataclass(frozen=True)
class Tolerance:
    """|a - b| <= atol + rtol * |b|; the default (0, 0) means exact bits, since the shadow store keeps exact bits."""

    atol: float = 0.0
    rtol: float = 0.0

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ToleranceError(f"`{name}` must be a finite number >= 0, got {value!r}") from None
            if not math.isfinite(number) or number < 0:
                raise ToleranceError(f"`{name}` must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, number)

    @property
    def exact(self) -> bool:
        return self.atol == 0.0 and self.rtol == 0.0


EXACT = Tolerance()
