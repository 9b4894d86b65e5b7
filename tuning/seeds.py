"""Seeds derived from the experiment seed, one named stream per use, so no two uses share draws.

Every seed is `numpy.random.SeedSequence([root, *stream])`'s first 32-bit word: a trial's seed
from the experiment seed and the words of its id, a halving segment's shuffling seed from the
trial's seed and its rung, and the streams named below from the experiment seed.
"""

from __future__ import annotations

import numpy as np

RANDOM_SEARCH = 1  # the random-search sampler's draws
TPE_SAMPLER = 2  # the TPE sampler's proposals
FINAL_REFIT = 2**31  # the final model's weights and shuffling (far from any trial-id word)


def derive_seed(root: int, *stream: int) -> int:
    """A 32-bit seed for the stream `stream` of `root`: the same inputs always give the same seed."""
    return int(np.random.SeedSequence([root, *stream]).generate_state(1)[0])
