#!/usr/bin/env python3
"""Counts individual test results in one or more meson testlog.json files.

A GTest suite (TAP) counts each of its test cases ("not ok ... # TODO", a known shortfall, as
skipped); the conformance suite counts each of its PASS/FAIL/SKIP lines; any other test counts
once. A suite that failed (crash, timeout,
sanitizer report) without reporting a failing case still counts as one failure, so the
total can never hide a failed run. Prints 'N passed, N failed, N skipped'."""
import json
import re
import sys

TAP_OK = re.compile(r"^ok \d+")
TAP_NOT_OK = re.compile(r"^not ok \d+")
CASE = re.compile(r"^(PASS|FAIL|SKIP) ")
BAD = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}


def count(path):
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            test = json.loads(line)
            p = fl = s = 0
            for out in (test.get("stdout") or "").splitlines():
                if TAP_NOT_OK.match(out) and "# TODO" in out:
                    s += 1          # TAP: a known shortfall, reported, not a failure
                elif TAP_NOT_OK.match(out):
                    fl += 1
                elif TAP_OK.match(out):
                    if "# SKIP" in out:
                        s += 1
                    else:
                        p += 1
                else:
                    m = CASE.match(out)
                    if m:
                        if m.group(1) == "PASS":
                            p += 1
                        elif m.group(1) == "FAIL":
                            fl += 1
                        else:
                            s += 1
            result = test.get("result")
            if p + fl + s == 0:
                if result == "SKIP":
                    s = 1
                elif result in BAD:
                    fl = 1
                else:
                    p = 1
            elif result in BAD and fl == 0:
                fl = 1
            passed += p
            failed += fl
            skipped += s
    return passed, failed, skipped


def main():
    total = [0, 0, 0]
    for path in sys.argv[1:]:
        for i, n in enumerate(count(path)):
            total[i] += n
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")


if __name__ == "__main__":
    main()
