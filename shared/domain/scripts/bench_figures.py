"""Prints the decision pass's benchmark figures from criterion's estimates.

The pass's time is printed as a multiple of a bare walk over the same inputs,
measured in the same run (`benches/decide.rs`): the ratio is the target, the
absolute times are information (they change with the machine).
"""

import json
import sys
from pathlib import Path

CRITERION = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
TARGET_RATIO = 3.0


def mean_ns(bench: str) -> float:
    estimates = CRITERION / "decide" / bench / "new" / "estimates.json"
    try:
        return json.loads(estimates.read_text())["mean"]["point_estimate"]
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"error: no estimate for decide/{bench} in {estimates} ({e}); run the decide bench first")


decide = mean_ns("10k_targets_1h_windows")
walk = mean_ns("bare_walk")
ratio = decide / walk
print(f"decide pass, 10,000 targets x 60 one-minute windows: {decide / 1e6:.2f} ms "
      f"(a bare walk of its inputs: {walk / 1e6:.2f} ms; information)")
print(f"decide: {ratio:.2f}\u00d7 a bare walk of its inputs (target: <= {TARGET_RATIO:g}\u00d7)"
      + ("" if ratio <= TARGET_RATIO else " MISSED"))
