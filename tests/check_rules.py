#!/usr/bin/env python3
"""Static checks of deploy/prometheus/rules.yml beyond what promtool checks.

- the recording rules and alerts that design.md names are all there;
- every alert has a `severity` label and `summary`, `description` and `runbook_url`
  annotations, and the runbook URL's anchor is a heading of README.md;
- rules.test.yml tests every alert both firing (a non-empty `exp_alerts`) and not
  firing (an empty one);
- every threshold the alerts compare with is recorded in the `entra-thresholds` group,
  and no alert hard-codes a number on the right of its comparison instead (except the
  0 of an `up`-style check).

Prints "rules: N passed, N failed" and exits non-zero on any failure.
"""

import re
import sys
from pathlib import Path

import yaml
from checks import Results

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "rules.test.yml"
README = ROOT / "README.md"

RECORDS = [
    "entra:mfa_registered:ratio",
    "entra:mfa_capable:ratio",
    "entra:sspr_capable:ratio",
    "entra:passwordless_capable:ratio",
    "entra:admin_mfa_capable:ratio",
    # issue 13b: method strength
    "entra:phishing_resistant:ratio",
    # issue 14: privileged roles
    "entra:privileged_phishing_resistant:ratio",
]
ALERTS = [
    "EntraMfaCoverageDropped",
    "EntraMfaCoverageBelowTarget",
    "EntraAdminWithoutMfa",
    "EntraExporterReportFailing",
    "EntraExporterReportStale",
    "EntraExporterDown",
    "EntraExporterThrottled",
    # issue 13b: Microsoft's data freshness
    "EntraRegistrationDataStale",
    # issue 14: privileged roles
    "EntraPrivilegedUserWithoutPhishingResistantMfa",
    "EntraPrivilegedUserWithoutMfa",
]


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def main():
    results = Results("rules")
    expect = results.expect

    rules = yaml.safe_load(RULES.read_text())
    groups = {g["name"]: g["rules"] for g in rules["groups"]}
    all_rules = [r for g in rules["groups"] for r in g["rules"]]
    records = {r["record"]: r for r in all_rules if "record" in r}
    alerts = {r["alert"]: r for r in all_rules if "alert" in r}
    for name in RECORDS:
        expect(name in records, f"recording rule {name} (design.md) missing")
    for name in ALERTS:
        expect(name in alerts, f"alert {name} (design.md) missing")

    anchors = {
        github_anchor(m.group(1))
        for m in re.finditer(r"^#+\s+(.*)$", README.read_text(), re.MULTILINE)
    }
    thresholds = {r["record"] for r in groups.get("entra-thresholds", [])}
    expect(thresholds, "no entra-thresholds group")
    for name, rule in alerts.items():
        ann = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            expect(ann.get(key), f"alert {name}: no {key} annotation")
        expect(rule.get("labels", {}).get("severity") in ("critical", "warning", "info"), f"alert {name}: no severity label")
        url = ann.get("runbook_url", "")
        anchor = url.partition("#")[2]
        expect(url.split("#")[0].endswith("/README.md") and anchor in anchors,
               f"alert {name}: runbook_url {url!r} is not an anchor of a README.md heading")
        expect("{{ $labels.tenant }}" in ann.get("summary", "") or "tenant" not in rule["expr"]
               or name == "EntraExporterDown", f"alert {name}: summary does not name the tenant")
        used = set(re.findall(r"entra:threshold:\w+", rule["expr"]))
        expect(used <= thresholds, f"alert {name}: threshold {used - thresholds} not recorded in entra-thresholds")
        literal = re.search(r"(==|!=|>=|<=|>|<)\s*([0-9.]+)\s*$", rule["expr"].strip())
        expect(not literal or literal.group(2) == "0",
               f"alert {name}: compares with the literal {literal.group(2) if literal else ''}; record it in entra-thresholds")

    tests = yaml.safe_load(TESTS.read_text())
    fired, silent = set(), set()
    for case in tests["tests"]:
        for t in case.get("alert_rule_test", []):
            (fired if t.get("exp_alerts") else silent).add(t["alertname"])
    for name in alerts:
        expect(name in fired, f"alert {name}: no test where it fires in {TESTS.name}")
        expect(name in silent, f"alert {name}: no test where it stays silent in {TESTS.name}")

    return results.finish()


if __name__ == "__main__":
    sys.exit(main())
