"""Print one closing line for the whole CI run, from the JUnit XML files its pytest steps wrote.

CI runs several pytest steps and then tools with pytest-like output of their own (the API fuzz
closes on "N warnings in Ns"), so the last line a reader of the log sees must be the totals of
every step: "ci: N passed, N failed, N skipped". Exits 1 when there is no report, a test failed,
or none passed."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def totals(reports: list[Path]) -> dict[str, int]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in reports:
        root = ET.parse(report).getroot()
        for suite in root.iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    return counts


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "test-artifacts/junit")
    reports = sorted(folder.glob("*.xml"))
    if not reports:
        print(f"ci: no JUnit reports in {folder}", file=sys.stderr)
        return 1
    counts = totals(reports)
    failed = counts["failures"] + counts["errors"]
    passed = counts["tests"] - failed - counts["skipped"]
    for report in reports:
        print(f"ci: {report.stem}: {totals([report])['tests']} tests")
    print(f"ci: {passed} passed, {failed} failed, {counts['skipped']} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
