#!/usr/bin/env python3
"""Breaks each invariant of the decision core on purpose and checks that the tests
meant to guard it notice. Run from the repository root: `make mutations`.

A mutation point is marked in the shipped source by a comment line

    // mutation: NAME

directly above the line to mutate, so that the points move with the code when it is
refactored. Each mutation below names its marker, the text of that line it replaces
and what with, and the tests that must then fail. The script edits the file, runs
those tests, and restores the file whatever happens. A mutation the tests do not
catch fails the run, and so does a marker with no mutation or a mutation whose
marker or text is not found.

The script edits sources in place: do not commit while it runs.
"""
import pathlib
import re
import subprocess
import sys

SRC = pathlib.Path("shared/domain/src")
MARKER = re.compile(r"^\s*// mutation: (\S+)\s*$")

PROPERTIES = [("properties", None)]

# (marker, invariant, original text on the marked line, broken text, tests that must
# fail: (test target, name filter or None for all of its tests))
MUTATIONS = [
    ("calm-below-hysteresis", "sustained burn never relaxes / no flapping (hysteresis)",
     ".min(thresholds.watch())", ".max(BurnRate(100_000_000))", PROPERTIES),
    ("floors-hold", "floors hold",
     "let mut reserved = concurrency.max(floor);", "let mut reserved = concurrency;", PROPERTIES),
    ("protected-never-throttled", "protected targets are never throttled",
     "if self.wish.protected && self.level", "if false && self.level", PROPERTIES),
    ("restore-point-kept", "the restore point is never overwritten",
     "if next.restore_point.is_none() {",
     "if next.restore_point.is_none() || next.phase.is_tightened() {", PROPERTIES),
    ("restore-point-is-original", "recovery restores exactly the restore point",
     "limits: self.target.limits.clone(),",
     "limits: crate::target::Limits::unset(self.target.id.kind()),", PROPERTIES),
    ("overrides-capped", "no method or route override is looser than a tightened stage",
     "let capped = clamp_override(stage, [own, prev], floors);", "let capped = own.unwrap_or(stage);",
     PROPERTIES),
    ("unreserved-minimum", "the unreserved minimum holds",
     "if delta <= 0 || self.available - delta >= self.minimum {", "if true {", PROPERTIES),
    ("converge-enforced-only", "deciding twice adds no action (dry-run convergence)",
     "let converge = enforced && target.guarded && prev.since < now;",
     "let converge = prev.mode == Mode::Enforce || m.mode != Mode::Enforce;", PROPERTIES),
    ("window-sums-exact", "window sums count every minute exactly once",
     "while at > 0 && all[at - 1].minute >= from {", "while at > 1 && all[at - 1].minute >= from {",
     PROPERTIES),
    ("money-exact", "money never loses a cent",
     "let billable = seg_end - start - free_overlap;",
     "let billable = (seg_end - start - free_overlap) / 10 * 10;", PROPERTIES),
    ("relapse-strike", "a new episode within the strike memory is a strike",
     "if next.episode_ended.is_some() {", "if false {", [("strikes", None)]),
    ("strikes-forgotten", "a calm longer than the strike memory forgets the strikes",
     "if out && remembered && self.now - ended >= memory {", "if false {", [("strikes", None)]),
    # Each caught only by a test that once passed without checking anything.
    ("multi-window-throttles", "a sustained burn above the first throttle threshold is throttled",
     "Some(k) => (Level::Throttle(k as u8), Rule::MultiWindow),",
     "Some(k) => (Level::Watch, Rule::MultiWindow),",
     [("properties", "sustained_burn_above_threshold_never_relaxes")]),
    ("first-level-throttles", "an attack between the first two thresholds is throttled, its restore point captured",
     "Some(0) => (Level::Watch, Rule::MultiWindow),", "Some(0 | 1) => (Level::Watch, Rule::MultiWindow),",
     [("properties", "recovery_restores_exactly_the_restore_point")]),
    ("attack-throttled", "an attack is throttled, its restore point captured first",
     "return Move::Tighten(self.level);", "return Move::Stay;",
     [("properties", "recovery_restores_exactly_the_restore_point")]),
    ("budget-spec-fields", "budget-shaped documents reach budget parsing",
     "#[serde(deny_unknown_fields)]", '#[serde(deny_unknown_fields, rename_all = "UPPERCASE")]',
     [("hostile", "arbitrary_json_never_panics_and_every_rejection_names_a_field")]),
]


def run_tests(tests) -> bool:
    """True when every named test passes."""
    for target, name in tests:
        command = ["cargo", "test", "-q", "--locked", "-p", "dowguard-domain", "--test", target]
        if name is not None:
            command += ["--", "--exact", name]
        if subprocess.run(command, capture_output=True, text=True).returncode != 0:
            return False
    return True


def markers() -> dict:
    """Every marker in the source: name -> (file, index of the marked line)."""
    found = {}
    for path in sorted(SRC.rglob("*.rs")):
        lines = path.read_text().split("\n")
        for i, line in enumerate(lines):
            match = MARKER.match(line)
            if not match:
                continue
            name = match.group(1)
            if name in found:
                raise SystemExit(f"marker '{name}' appears twice: {found[name][0]} and {path}")
            found[name] = (path, i + 1)
    return found


def mutate(path: pathlib.Path, index: int, original: str, broken: str, name: str) -> str:
    """The text of `path` with line `index` mutated; fails unless `original` is on it once."""
    text = path.read_text()
    lines = text.split("\n")
    if index >= len(lines) or lines[index].count(original) != 1:
        line = lines[index] if index < len(lines) else "(end of file)"
        raise SystemExit(f"mutation '{name}': the line after its marker in {path} is\n    {line.strip()}\n"
                         f"which does not hold `{original}` once; update the mutation or the marker")
    lines[index] = lines[index].replace(original, broken)
    return "\n".join(lines)


def main() -> int:
    points = markers()
    names = [m[0] for m in MUTATIONS]
    unused = sorted(set(points) - set(names))
    missing = sorted(set(names) - set(points))
    if unused or missing:
        print(f"markers without a mutation: {unused}; mutations without a marker: {missing}")
        return 1
    every_test = sorted({t for m in MUTATIONS for t in m[4]}, key=str)
    if not run_tests(every_test):
        print("the tests fail before any mutation; fix them first")
        return 1
    missed = []
    for name, invariant, original, broken, tests in MUTATIONS:
        path, index = points[name]
        text = path.read_text()
        mutated = mutate(path, index, original, broken, name)
        try:
            path.write_text(mutated)
            caught = not run_tests(tests)
        finally:
            path.write_text(text)
        print(f"{'caught' if caught else 'MISSED'}: {invariant} [{name}]")
        if not caught:
            missed.append(name)
    print(f"{len(MUTATIONS) - len(missed)} passed, {len(missed)} failed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
