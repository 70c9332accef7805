"""Which movie frames a Sequencer strip shows on the timeline (bpy-free).

A movie strip shows content frame ``t - frame_start`` at timeline frame ``t``, unless it is
retimed. A uniform speed change ("Set Speed" on the whole strip) leaves two retiming keys,
``k0`` and ``k1``, at the content's start and end. Measured by rendering such strips and
matching the renders to the movie's frames, Blender shows at timeline frame ``t``:

- 4.2: content ``round((t - k0) * (length - 1) / (k1 - k0))``, ``k1`` being the last frame shown;
- 5.0: content ``round((t - k0) * length / (k1 - k0))``, ``k1`` being one past the last.

More keys mean a speed that varies along the strip: where inner keys sit in the movie is
not readable from Python, so that case is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class StripTimingError(ValueError):
    pass


@dataclass(frozen=True)
class ShownRange:
    first: int  # first content frame shown
    count: int  # content frames spanned, first to last shown
    speed: float  # content frames per timeline frame over the shown range


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))  # Blender rounds halves up, not to even


def shown_range(
    frame_start: int,
    final_start: int,
    final_end: int,
    length: int,
    retiming_keys: list[int],
    keys_end_exclusive: bool = False,
) -> ShownRange:
    """The content frames a strip shows between ``final_start`` and ``final_end`` (exclusive);
    ``length`` is the movie's own frame count and ``keys_end_exclusive`` Blender 5's rule."""
    shown = final_end - final_start
    if shown <= 0 or length <= 0:
        raise StripTimingError("The strip shows no frames.")
    if not retiming_keys:
        first = final_start - frame_start
        return ShownRange(first, shown, 1.0)
    if len(retiming_keys) != 2:
        raise StripTimingError(
            f"The strip's speed varies along it ({len(retiming_keys)} retiming keys). Replace Performer "
            "follows offsets, trims and one constant speed: keep one speed (Strip > Retiming > Reset, "
            "then Set Speed), or split the strip where the speed changes and replace each part."
        )
    k0, k1 = sorted(retiming_keys)
    if k1 <= k0:
        raise StripTimingError("The strip's retiming keys overlap; reset its retiming.")

    def content(t: int) -> int:
        if keys_end_exclusive:
            c = _round((t - k0) * length / (k1 - k0))
        else:
            c = _round((t - k0) * (length - 1) / (k1 - k0))
        return min(length - 1, max(0, c))

    first, last = content(final_start), content(final_end - 1)
    count = last - first + 1
    return ShownRange(first, count, count / shown)
