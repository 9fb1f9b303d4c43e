#!/usr/bin/env python3
"""Judges what tests/gimp/failures.py saw: one PASS or FAIL line per case (run-e2e.sh counts
them). A failure must reach the user as GIMP's error message, never as a crashed plug-in, and
leave the image without a new layer; the run after them all must work."""
import json
import sys

try:
    cases = json.load(open(sys.argv[1], encoding="utf-8"))
except (OSError, ValueError) as e:
    print("FAIL failures/results: %s" % e)
    sys.exit(0)


def report(name, ok, why):
    print("PASS failures/%s" % name if ok else "FAIL failures/%s: %s" % (name, why))


def refused(case, *words):
    """Not a success, a message holding WORDS, not a crash, no new layer."""
    c = cases.get(case)
    if c is None:
        return False, "the case did not run"
    msg = c["message"]
    problems = []
    if c["success"]:
        problems.append("succeeded")
    # a plug-in killed by a signal reaches the caller as "returned no return values"
    if not c["success"] and (not msg or "crash" in msg.lower()
                             or "returned no return values" in msg):
        problems.append("no message of Gesso's: the plug-in crashed")
    problems += ["no %r in the message" % w for w in words if w not in msg]
    if c["layers_after"] != c["layers_before"]:
        problems.append("%d layers became %d" % (c["layers_before"], c["layers_after"]))
    return not problems, "; ".join(problems) + " (%s: %r)" % (c["status"], msg)


ok, why = refused("nan-model", "NaN", "conv_in.weight")
report("nan-model-refused-no-layer", ok, why)

c = cases.get("model-cut-during-run")
if c is None:
    report("model-cut-during-run", False, "the case did not run")
elif c["success"]:
    # the weights were already in the plug-in's own memory: the run finished unharmed
    report("model-cut-during-run", c["layers_after"] == c["layers_before"] + 1,
           "succeeded without its layer")
else:
    ok, why = refused("model-cut-during-run", "")
    report("model-cut-during-run", ok, why)

ok, why = refused("model-cut-before-run", "truncated")
report("model-cut-then-used-refused-no-layer", ok, why)

ok, why = refused("oversize-canvas", "GiB", "60000")
c = cases.get("oversize-canvas", {})
if ok and c.get("seconds", 99) > 5:
    ok, why = False, "took %.1f s" % c["seconds"]
report("oversize-canvas-refused-no-layer", ok, why)

c = cases.get("still-working")
report("gimp-still-working-after-failures",
       c is not None and c["success"] and c["layers_after"] == c["layers_before"] + 1,
       "the last run failed: %r" % (c,))
