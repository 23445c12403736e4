"""Print "ran failed errors skipped" summed over pytest JUnit XML reports (ran excludes skipped)."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for report in sys.argv[1:]:
    if not Path(report).exists():
        continue
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
ran = totals["tests"] - totals["skipped"]
print(ran, totals["failures"], totals["errors"], totals["skipped"])
