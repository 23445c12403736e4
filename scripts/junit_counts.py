"""Print "ran failed errors skipped" from a pytest JUnit XML report (ran excludes skipped)."""

import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for suite in suites:
    for key in totals:
        totals[key] += int(suite.get(key, 0))
ran = totals["tests"] - totals["skipped"]
print(ran, totals["failures"], totals["errors"], totals["skipped"])
