"""Asserts what the Chaos Toolkit experiment must have shown: every activity and rollback
succeeded, the 200 ms latency toxic was felt, the disabled proxy reported itself so, and
the rollbacks left nothing behind on the server.

    python3 check_journal.py JOURNAL CHAOS_PORT
"""

import json
import sys
import urllib.error
import urllib.request


def main(journal_path, port):
    with open(journal_path) as f:
        journal = json.load(f)
    problems = []
    if journal.get("status") != "completed":
        problems.append("experiment status is %r, not 'completed'" % journal.get("status"))
    if journal.get("deviated"):
        problems.append("the steady state deviated")
    runs = {run["activity"]["name"]: run for run in journal.get("run", [])}
    for name in ["create-proxy", "add-latency", "measure-round-trip", "toxics-on-proxy",
                 "take-proxy-down", "proxy-enabled"]:
        run = runs.get(name)
        if run is None:
            problems.append("activity %s did not run" % name)
        elif run.get("status") != "succeeded":
            problems.append("activity %s: %s %s" % (name, run.get("status"), run.get("exception")))
    measured = runs.get("measure-round-trip", {}).get("output") or {}
    try:
        seconds = float((measured.get("stdout") or "").strip())
        if seconds < 0.18:
            problems.append("the 200 ms latency toxic was not felt: %.3fs" % seconds)
    except ValueError:
        problems.append("measure-round-trip printed %r" % measured)
    toxics = runs.get("toxics-on-proxy", {}).get("output") or []
    if [t.get("name") for t in toxics] != ["slow"]:
        problems.append("toxics on the proxy were %r" % toxics)
    if runs.get("proxy-enabled", {}).get("output") is not False:
        problems.append("a disabled proxy said enabled=%r" % runs.get("proxy-enabled", {}).get("output"))
    for rollback in journal.get("rollbacks", []):
        if rollback.get("status") != "succeeded":
            problems.append("rollback %s: %s" % (rollback["activity"]["name"], rollback.get("status")))
    if len(journal.get("rollbacks", [])) != 3:
        problems.append("%d rollbacks ran, not 3" % len(journal.get("rollbacks", [])))
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/proxies/ctk" % port, timeout=5)
        problems.append("the proxy is still there after the rollbacks")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            problems.append("GET /proxies/ctk after the rollbacks: %d" % e.code)
    if problems:
        print("chaostoolkit experiment: FAILED")
        for p in problems:
            print("  - " + p)
        sys.exit(1)
    print("chaostoolkit experiment: ok (latency felt: %.3fs; rollbacks: 3)" % seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
