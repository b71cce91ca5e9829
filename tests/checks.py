"""Pass/fail bookkeeping shared by the Python checks under tests/ (check_rules.py,
check_deploy.py, e2e_prometheus.py): each check is counted, every failure is listed, and
the closing line reads "NAME: N passed, N failed" like a test runner's."""

import sys


class Results:
    """Counts passed checks and collects failure messages."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failures = []

    def expect(self, ok, message):
        """Counts a check: passed when `ok`, else `message` is recorded. Returns `ok`."""
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return bool(ok)

    def fail(self, message):
        self.failures.append(message)

    def finish(self):
        """Prints the failures and the closing line; returns the exit code."""
        for f in self.failures:
            print(f"FAIL {f}", file=sys.stderr)
        sys.stderr.flush()
        print(f"{self.name}: {self.passed} passed, {len(self.failures)} failed", flush=True)
        return 1 if self.failures else 0
