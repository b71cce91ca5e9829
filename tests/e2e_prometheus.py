#!/usr/bin/env python3
"""End to end against a real Prometheus: every dashboard query and every rule returns data.

Starts the exporter binary on `--demo` and a real Prometheus (Debian's `prometheus`
package) that scrapes it every 2 s with deploy/prometheus/rules.yml loaded and evaluated
every 2 s, both on 127.0.0.1 in a temporary directory. Once data has arrived it runs,
through Prometheus' HTTP API:

- every query of every panel in dashboards/*.json, with the template variables set
  (`$tenant` = the demo tenant), as a range query (or an instant query where the panel
  asks for one): it must not error and must return at least one finite sample;
- every recording rule: its expression must return data, and Prometheus must have
  recorded its series;
- every alert: its expression must evaluate without error (when the alert is not firing
  it returns nothing, so that alone proves little), and its condition turned into a
  0/1 value (`bool` after the one top-level comparison) must return data. `offset`
  modifiers are dropped for that second query, because a fresh Prometheus has no week of
  history: for EntraMfaCoverageDropped this checks "current coverage minus itself"
  evaluates, and rules.test.yml checks the 7-day comparison itself;
- /api/v1/rules: every rule of the file is loaded and its last evaluation is healthy.

Both processes are stopped by PID. Usage: tests/e2e_prometheus.py [PATH-TO-EXPORTER]
(default: $CARGO_TARGET_DIR or target, /debug/entra-mfa-exporter).
"""

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml
from checks import Results

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
DEMO_TENANT = "demo"
JOB = "entra-mfa-exporter"
# Generous: the machine is shared; loops poll and stop as soon as the condition holds.
STARTUP_TIMEOUT = 120.0
# Rate and increase queries need several samples of every series.
MIN_SCRAPES = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_for(what, check, timeout=STARTUP_TIMEOUT, procs=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for name, p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


class Prometheus:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            _, body = http_get(url, timeout=30)
        except urllib.error.HTTPError as e:
            body = e.read()
        reply = json.loads(body)
        if reply.get("status") != "success":
            raise QueryError(f"{reply.get('errorType')}: {reply.get('error')}")
        return reply["data"]

    def instant(self, expr):
        return self.api("query", query=expr)["result"]

    def range(self, expr, seconds=60, step=2):
        end = time.time()
        return self.api("query_range", query=expr, start=end - seconds, end=end, step=step)["result"]


class QueryError(Exception):
    pass


def finite_values(result):
    """The finite sample values of an instant or range query result."""
    out = []
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        for _, v in samples:
            f = float(v)
            if math.isfinite(f):
                out.append(f)
    return out


def substitute(expr):
    """Sets the dashboards' template variables as Grafana would for the demo tenant."""
    expr = expr.replace("${tenant}", DEMO_TENANT).replace("$tenant", DEMO_TENANT)
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise ValueError(f"unsubstituted variables {leftover} in {expr!r}")
    return expr


COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def condition_as_bool(expr):
    """`a > b` ▸ `a > bool b` for the single comparison at the top level of `expr`.

    Strings and label matchers (`{...}`) are skipped; parentheses must balance. An alert
    written with no or several top-level comparisons is rejected, so the e2e test always
    knows which part is the condition.
    """
    found = []
    depth = 0
    i = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            end = expr.index(c, i + 1)
            i = end + 1
            continue
        if c == "{":
            i = expr.index("}", i) + 1
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0:
            for op in COMPARISONS:
                if expr.startswith(op, i):
                    found.append((i, op))
                    i += len(op) - 1
                    break
        i += 1
    if len(found) != 1:
        raise ValueError(f"expected exactly one top-level comparison, found {[op for _, op in found]} in {expr!r}")
    pos, op = found[0]
    after = pos + len(op)
    return expr[:after] + " bool" + expr[after:]


def without_offsets(expr):
    return re.sub(r"\s+offset\s+-?[0-9]+[smhdwy]", "", expr)


def main(argv):
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exporter_bin = Path(argv[1]) if len(argv) > 1 else target / "debug" / "entra-mfa-exporter"
    if not exporter_bin.is_file():
        print(f"exporter binary {exporter_bin} not found: run `cargo build` first", file=sys.stderr)
        return 2
    prometheus_bin = shutil.which("prometheus")
    if not prometheus_bin:
        print("prometheus not found: apt-get install prometheus (Debian), or run scripts/test", file=sys.stderr)
        return 2
    if not DASHBOARDS:
        print("no dashboards found in dashboards/", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="entra-e2e-"))
    exporter_port, prom_port = free_port(), free_port()
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    procs = []
    results = Results("e2e")
    try:
        exporter_log = open(work / "exporter.log", "wb")
        exporter = subprocess.Popen(
            [str(exporter_bin), "--demo", "--web.listen-address", f"127.0.0.1:{exporter_port}", "--log.level", "warn"],
            stdout=exporter_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(("exporter", exporter))
        prom_log = open(work / "prometheus.log", "wb")
        prom = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            stdout=prom_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(("prometheus", prom))
        p = Prometheus(f"http://127.0.0.1:{prom_port}")
        started = time.monotonic()
        wait_for("prometheus ready", lambda: http_get(f"{p.base}/-/ready")[0] == 200, procs=procs)
        wait_for("exporter ready", lambda: http_get(f"http://127.0.0.1:{exporter_port}/-/ready")[0] == 200, procs=procs)
        # Every report of the demo tenant has a snapshot, seen in several scrapes, and the
        # rules have been evaluated several times.
        def every_report_scraped():
            reports = p.instant(f'entra_exporter_report_up{{tenant="{DEMO_TENANT}"}}')
            ok = p.instant(
                f'count_over_time(entra_exporter_report_last_success_timestamp_seconds{{tenant="{DEMO_TENANT}"}}[5m])'
                f" >= {MIN_SCRAPES}"
            )
            return reports and len(ok) == len(reports)

        wait_for(f"{MIN_SCRAPES} scrapes of every report of the demo tenant", every_report_scraped, procs=procs)
        wait_for(
            "recording rules evaluated",
            lambda: finite_values(p.instant("count_over_time(entra:admin_mfa_capable:ratio[5m])")) and min(finite_values(p.instant("count_over_time(entra:admin_mfa_capable:ratio[5m])"))) >= 2,
            procs=procs,
        )
        # A refresh after the first scrape, so counters move inside the panels' windows
        # (the demo refreshes every 20 s).
        wait_for(
            "a refresh between scrapes",
            lambda: sum(finite_values(p.instant("increase(entra_exporter_graph_requests_total[5m])"))) > 0,
            procs=procs,
        )
        print(f"e2e: exporter and prometheus up with data after {time.monotonic() - started:.0f}s", flush=True)

        def check(label, run):
            try:
                result = run()
            except (QueryError, ValueError) as e:
                results.fail(f"{label}: error: {e}")
                return
            results.expect(finite_values(result), f"{label}: returned no data")

        dashboard_queries = 0
        for path in DASHBOARDS:
            dashboard = json.loads(path.read_text())
            variables = dashboard.get("templating", {}).get("list", [])
            for v in variables:
                if v.get("type") == "query":
                    q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                    m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q)
                    if not m:
                        results.fail(f"{path.name}: variable {v['name']}: cannot check query {q!r}")
                        continue
                    metric, label = m.groups()
                    dashboard_queries += 1
                    # The variable must offer the demo tenant.
                    q = f'group by ({label}) ({metric}{{{label}="{DEMO_TENANT}"}})'
                    check(f"{path.name}: variable {v['name']}", lambda q=q: p.instant(q))
            panels = [x for top in dashboard.get("panels", []) for x in [top, *top.get("panels", [])]]
            for panel in panels:
                for t in panel.get("targets", []):
                    dashboard_queries += 1
                    label = f"{path.name}: panel {panel['title']!r} query {t['refId']}"
                    try:
                        expr = substitute(t["expr"])
                    except ValueError as e:
                        results.fail(f"{label}: {e}")
                        continue
                    if t.get("instant"):
                        check(label, lambda e=expr: p.instant(e))
                    else:
                        check(label, lambda e=expr: p.range(e))

        rules_doc = yaml.safe_load(RULES.read_text())
        rule_exprs = 0
        names = []
        for group in rules_doc["groups"]:
            for rule in group["rules"]:
                expr = rule["expr"]
                if "record" in rule:
                    names.append(rule["record"])
                    rule_exprs += 1
                    check(f"record {rule['record']}: expression", lambda e=expr: p.instant(e))
                    check(f"record {rule['record']}: recorded series", lambda n=rule["record"]: p.instant(n))
                else:
                    names.append(rule["alert"])
                    rule_exprs += 1
                    try:
                        p.instant(expr)
                        results.expect(True, "")
                    except QueryError as e:
                        results.fail(f"alert {rule['alert']}: expression: error: {e}")
                    try:
                        signal_expr = without_offsets(condition_as_bool(expr))
                    except ValueError as e:
                        results.fail(f"alert {rule['alert']}: {e}")
                        continue
                    check(f"alert {rule['alert']}: condition as 0/1", lambda e=signal_expr: p.instant(e))

        loaded = {}
        for group in p.api("rules")["groups"]:
            for rule in group["rules"]:
                loaded[rule["name"]] = rule
        for name in names:
            rule = loaded.get(name)
            if rule is None:
                results.fail(f"rule {name}: not loaded by Prometheus")
            elif rule.get("health") != "ok":
                results.fail(f"rule {name}: health {rule.get('health')}: {rule.get('lastError')}")
            else:
                results.expect(True, "")

        # Issue 14b: the policy panel is informative on --demo: some methods enabled, some
        # disabled, and the registration campaign off (the demo's policy sets it disabled).
        for label, expr in [
            ("policy: a method enabled", f'entra_auth_method_enabled{{tenant="{DEMO_TENANT}"}} == 1'),
            ("policy: a method disabled", f'entra_auth_method_enabled{{tenant="{DEMO_TENANT}"}} == 0'),
            ("policy: campaign off", f'entra_auth_method_registration_campaign_enabled{{tenant="{DEMO_TENANT}"}} == 0'),
        ]:
            check(label, lambda e=expr: p.instant(e))

        # Issue 14: --demo has eligible-only Global Administrators without phishing-resistant
        # methods (one not MFA capable): both privileged alerts are active for them
        # (pending during their `for: 15m`, then firing).
        for alert in ("EntraPrivilegedUserWithoutPhishingResistantMfa", "EntraPrivilegedUserWithoutMfa"):
            sel = f'alertname="{alert}",tenant="{DEMO_TENANT}",role="Global Administrator",assignment="eligible"'
            active = p.instant(f"ALERTS{{{sel}}}")
            states = sorted({r["metric"].get("alertstate", "?") for r in active})
            results.expect(states, f"alert {alert}: not active for the demo's eligible Global Administrators")
            every = p.instant(f'ALERTS{{alertname="{alert}",tenant="{DEMO_TENANT}"}}')
            held = sorted(f"{r['metric'].get('role')} ({r['metric'].get('assignment')})" for r in every)
            print(f"e2e: {alert} for the demo's eligible Global Administrators: {', '.join(states) or 'inactive'}; "
                  f"active for {len(held)} role x assignment: {'; '.join(held)}", flush=True)

        print(f"e2e: {dashboard_queries} dashboard queries (panels and variables) in {len(DASHBOARDS)} dashboards, "
              f"{rule_exprs} rule expressions ({len(names)} rules healthy in Prometheus)", flush=True)
    finally:
        for name, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if results.failures or any(proc.returncode not in (0, -signal.SIGTERM) for _, proc in procs):
            for name in ("exporter.log", "prometheus.log"):
                log = work / name
                if log.exists():
                    print(f"--- {name} (last 2 kB)", file=sys.stderr)
                    print(log.read_bytes()[-2048:].decode(errors="replace"), file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    return results.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
