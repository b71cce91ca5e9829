#!/usr/bin/env python3
"""Writes base/prometheusrule.yaml: deploy/prometheus/rules.yml wrapped in a Prometheus
Operator PrometheusRule, so Kubernetes and plain Prometheus load the same rules.

`--check` exits 1 when base/prometheusrule.yaml differs from what this would write
(scripts/test runs it), so the two cannot drift apart. The groups are copied as parsed
YAML, not as text: the comments of rules.yml stay there.
"""

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "rules.yml"
OUT = HERE / "base" / "prometheusrule.yaml"


class Literal(str):
    pass


def literal_presenter(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


def to_literals(node):
    """Multi-line strings (PromQL) as `|` blocks, as in rules.yml, for a readable diff."""
    if isinstance(node, dict):
        return {k: to_literals(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_literals(v) for v in node]
    if isinstance(node, str) and "\n" in node:
        return Literal(node)
    return node


def render():
    rules = yaml.safe_load(RULES.read_text())
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "entra-mfa-exporter"},
        "spec": {"groups": to_literals(rules["groups"])},
    }
    dumper = yaml.SafeDumper
    dumper.add_representer(Literal, literal_presenter)
    header = (
        "# Generated from deploy/prometheus/rules.yml by deploy/kubernetes/generate-prometheusrule.py;\n"
        "# do not edit. Edit rules.yml and re-run the script.\n"
    )
    return header + yaml.dump(doc, Dumper=dumper, sort_keys=False, width=1000, allow_unicode=True)


def main(argv):
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(HERE.parent.parent)} is out of date with {RULES.name}: "
                  "run python3 deploy/kubernetes/generate-prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
