#!/usr/bin/env python3
"""Breaks each invariant of the decision core on purpose and checks that the
property tests notice. Run from the repository root: `make mutations`.

Each mutation edits one spot of the shipped source, runs the property tests, and
restores the file whatever happens. A mutation the tests do not catch fails the run.
"""
import pathlib
import subprocess
import sys

SRC = pathlib.Path("shared/domain/src")

# (invariant, file, original text, broken text)
MUTATIONS = [
    ("sustained burn never relaxes / no flapping (hysteresis)", "decide.rs",
     ".min(thresholds.watch());", ".max(BurnRate(100_000_000));"),
    ("floors hold", "decide.rs",
     "let mut reserved = concurrency.max(u64::from(floors.concurrency));", "let mut reserved = concurrency;"),
    ("protected targets are never throttled", "decide.rs",
     "if wish.protected && wish.level >= Level::Throttle(1) {", "if false && wish.level >= Level::Throttle(1) {"),
    ("the restore point is never overwritten", "decide.rs",
     "if next.restore_point.is_none() {", "if next.restore_point.is_none() || next.phase.is_tightened() {"),
    ("recovery restores exactly the restore point", "decide.rs",
     "limits: target.limits.clone(),", "limits: Limits::unset(target.id.kind()),"),
    ("no method or route override is looser than a tightened stage", "decide.rs",
     "let capped = clamp_override(stage, [own, prev], floors);", "let capped = own.unwrap_or(stage);"),
    ("the unreserved minimum holds", "decide.rs",
     "if delta <= 0 || *pool - delta >= minimum {", "if true {"),
    ("deciding twice adds no action (dry-run convergence)", "decide.rs",
     "} else if apply && target.guarded && prev.mode == Mode::Enforce && prev.since < now {",
     "} else if prev.mode == Mode::Enforce || !apply {"),
    ("window sums count every minute exactly once", "usage.rs",
     "while at > 0 && all[at - 1].minute >= from {", "while at > 1 && all[at - 1].minute >= from {"),
    ("money never loses a cent", "pricebook.rs",
     "let billable = seg_end - start - free_overlap;", "let billable = (seg_end - start - free_overlap) / 10 * 10;"),
]


def run_tests() -> bool:
    result = subprocess.run(
        ["cargo", "test", "--release", "-q", "-p", "dowguard-domain", "--test", "properties"],
        capture_output=True, text=True,
    )
    return result.returncode == 0


def main() -> int:
    if not run_tests():
        print("the property tests fail before any mutation; fix them first")
        return 1
    missed = []
    for name, file, original, broken in MUTATIONS:
        path = SRC / file
        text = path.read_text()
        count = text.count(original)
        if count != 1:
            print(f"mutation '{name}': expected the text once in {file}, found it {count} times")
            return 1
        try:
            path.write_text(text.replace(original, broken))
            caught = not run_tests()
        finally:
            path.write_text(text)
        print(f"{'caught' if caught else 'MISSED'}: {name}")
        if not caught:
            missed.append(name)
    print(f"{len(MUTATIONS) - len(missed)} passed, {len(missed)} failed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
