"""Print one closing line for the whole CI run, from the JUnit XML files its pytest steps wrote.

CI runs several pytest steps and then tools with pytest-like output of their own (the API fuzz
prints "N warnings in Ns"), so the last line of the log must be the totals of every step, in
pytest's own summary form ("=== N passed, N skipped in Ns ==="), which is how a reader of the log
(or a tool) finds the run's result. Exits 1 when there is no report, a test failed, or none passed."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def totals(reports: list[Path]) -> dict[str, float]:
    """Tests, failures, errors and skipped (counts) and time (seconds) over every report."""
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped", "time"), 0.0)
    for report in reports:
        root = ET.parse(report).getroot()
        for suite in root.iter("testsuite"):
            for key in counts:
                counts[key] += float(suite.get(key, 0))
    return counts


def summary_line(passed: int, failed: int, errors: int, skipped: int, seconds: float) -> str:
    """The line pytest itself would close a run with, for all steps together."""
    parts = [
        f"{n} {word}"
        for n, word in ((failed, "failed"), (passed, "passed"), (skipped, "skipped"), (errors, "errors"))
        if n
    ]
    text = f" {', '.join(parts) or 'no tests ran'} in {seconds:.2f}s "
    return text.center(80, "=")


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "test-artifacts/junit")
    reports = sorted(folder.glob("*.xml"))
    if not reports:
        print(f"ci: no JUnit reports in {folder}", file=sys.stderr)
        return 1
    counts = totals(reports)
    failed, errors, skipped = (int(counts[key]) for key in ("failures", "errors", "skipped"))
    passed = int(counts["tests"]) - failed - errors - skipped
    for report in reports:
        print(f"ci: {report.stem}: {int(totals([report])['tests'])} tests")
    print(f"ci: all pytest steps together: {passed} passed, {failed + errors} failed, {skipped} skipped")
    print(summary_line(passed, failed, errors, skipped, counts["time"]))
    return 1 if failed or errors or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
