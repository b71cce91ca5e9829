#!/usr/bin/env python3
"""The container image's build without a Docker engine: what deploy/Dockerfile's build
stage sees is staged into a directory and its own cargo command runs there.

- The .dockerignore matcher (tests/build_context.py) agrees with Docker's documented
  examples. Cargo.toml's rust-version covers every locked dependency's, the image's
  rust tag covers it, and README.md names it.
- A probe crate whose Cargo.toml declares a `[[bench]]`: through a Dockerfile that does
  not COPY the bench, the Dockerfile's cargo command fails on the manifest; with a COPY
  of a path its .dockerignore leaves out, staging fails; with both right it builds.
- deploy/Dockerfile: the context its Dockerfile.dockerignore lets through, the COPYs of
  each stage that runs cargo staged under target/docker-context/root/ (the image's
  filesystem, WORKDIR included), then the stage's RUN: cargo with CARGO_NET_OFFLINE=true
  and this machine's CARGO_HOME (the registry cache mount), the cache mount of the
  WORKDIR's target/ kept in target/docker-context/cache/ so a re-run is incremental;
  the RUN's `cp` finds what cargo built, the final stage's `COPY --from` takes it from
  where the RUN put it, and the binary runs. Before that, the staged manifest with one
  more target whose file the context leaves out must make the same command fail.

Usage: tests/check_build_context.py. Prints the build time and
"build-context: N passed, N failed".
"""

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from build_context import ContextError, context_files, dockerignore_for, ignored
from build_context import plan_copies, read_dockerfile, read_dockerignore, run_parts
from checks import Results

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
WORK = ROOT / "target" / "docker-context"
# Cache mounts outside the WORKDIR that this machine's CARGO_HOME stands in for.
CARGO_HOME_MOUNT = re.compile(r"/cargo/(registry|git)$")

results = Results("build-context")
expect = results.expect


class BuildError(Exception):
    """The Dockerfile's own command failed; the message is its output."""


@dataclass
class Built:
    stages: list
    stage: str | None = None  # the name of the stage that ran cargo
    produced: dict = field(default_factory=dict)  # image path -> host path, from the RUN's cp
    seconds: float = 0.0  # in cargo


def build(context, dockerfile, root, cache):
    """Stages every stage of `dockerfile` that runs cargo and runs its RUN commands.
    Raises ContextError or BuildError."""
    _, patterns = dockerignore_for(dockerfile, context)
    files = context_files(context, patterns)
    built = Built(read_dockerfile(Path(dockerfile).read_text()))
    for stage in built.stages:
        workdir, env, copies, runs = plan_copies(stage, files)
        if not any("cargo" in r.args for r in runs):
            continue
        if Path(root).exists():
            shutil.rmtree(root)
        for c in copies:
            dest = Path(root) / c.target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(context) / c.source, dest)  # mtimes kept: cargo stays incremental
        cwd = Path(root) / workdir.lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
        for ins in runs:
            mounts, commands = run_parts(ins)
            for target in mounts:
                if target.startswith(workdir.rstrip("/") + "/"):
                    host = Path(cache) / target.lstrip("/")
                    host.mkdir(parents=True, exist_ok=True)
                    link = Path(root) / target.lstrip("/")
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(host, target_is_directory=True)
                elif not CARGO_HOME_MOUNT.search(target):
                    raise ContextError(f"line {ins.line}: cache mount {target} is not modelled")
            for words in commands:
                if words[0] == "cargo":
                    run_env = {k: v for k, v in os.environ.items()
                               if k not in ("CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR")}
                    run_env.update(env, CARGO_NET_OFFLINE="true")
                    start = time.monotonic()
                    r = subprocess.run(words, cwd=cwd, env=run_env, capture_output=True, text=True)
                    built.seconds += time.monotonic() - start
                    if r.returncode != 0:
                        raise BuildError(f"line {ins.line}: {' '.join(words)}: exit {r.returncode}\n"
                                         + r.stderr[-4000:])
                elif words[0] == "cp" and len(words) == 3:
                    src = cwd / words[1]
                    if not src.is_file():
                        raise BuildError(f"line {ins.line}: cp: {words[1]} was not built")
                    built.produced[posixpath.join(workdir, words[2])] = src.resolve()
                else:
                    raise ContextError(f"line {ins.line}: RUN command {words[0]!r} is not modelled")
        built.stage = stage.name
    return built


def final_copies_from(stages, name):
    """The `COPY --from=<name> SRC DEST` sources of the final stage."""
    out = []
    for ins in stages[-1].instructions:
        m = re.match(rf"COPY\s+--from={re.escape(name)}\s+(\S+)\s+\S+$", f"{ins.keyword} {ins.args}")
        if m:
            out.append(m.group(1))
    return out


def matcher_examples():
    """Docker's documented .dockerignore examples, and this Dockerfile's idiom."""
    cases = [
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp", True),
        ("*/temp*", "temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("*/*/temp*", "somedir/temporary.txt", False),
        ("temp?", "tempa", True),
        ("temp?", "temp", False),
        ("**/*.go", "main.go", True),
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "a/b/c.gox", False),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
        ("*.md\n!README*.md\nREADME-secret.md", "CHANGELOG.md", True),
        ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
        ("target", "target/release/x", True),  # a parent's match covers the tree below
        ("/target/", "target/release/x", True),  # leading and trailing slashes are cleaned
        ("src/**", "src/a/b.rs", True),
        ("src/**", "src", False),
        ("*\n!src/", "src/a/b.rs", False),
        ("*\n!src/", "srcx/a.rs", True),
        ("*\n!src/", "Cargo.toml", True),
        ("*\n!Cargo.toml", "Cargo.toml", False),
        ("# comment\n\n  *  \n!build.rs", "build.rs", False),
    ]
    for text, path, want in cases:
        got = ignored(path, read_dockerignore(text))
        expect(got == want, f"dockerignore {text!r}: {path} ignored={got}, Docker says {want}")


PROBE_MANIFEST = """[package]
name = "probe"
version = "0.0.0"
edition = "2021"

[[bench]]
name = "b"
harness = false
"""
PROBE_LOCK = 'version = 4\n\n[[package]]\nname = "probe"\nversion = "0.0.0"\n'
PROBE_DOCKERFILE = """FROM rust:1 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
{extra}RUN --mount=type=cache,target=/usr/local/cargo/registry \\
    --mount=type=cache,target=/src/target \\
    cargo build --release --locked --bin probe \\
    && cp target/release/probe /probe
FROM scratch
COPY --from=build /probe /probe
"""


def probe(tmp):
    """The staging and build machinery on a crate of three files, in each direction."""
    repo = tmp / "probe"
    (repo / "src").mkdir(parents=True)
    (repo / "benches").mkdir()
    (repo / "deploy").mkdir()
    (repo / "Cargo.toml").write_text(PROBE_MANIFEST)
    (repo / "Cargo.lock").write_text(PROBE_LOCK)
    (repo / "src" / "main.rs").write_text('fn main() { println!("probe"); }\n')
    (repo / "benches" / "b.rs").write_text("fn main() {}\n")
    dockerfile = repo / "deploy" / "Dockerfile"
    ignore = repo / "deploy" / "Dockerfile.dockerignore"

    def attempt(extra, ignore_text):
        dockerfile.write_text(PROBE_DOCKERFILE.format(extra=extra))
        ignore.write_text(ignore_text)
        return build(repo, dockerfile, tmp / "root", tmp / "cache")

    whitelist = "*\n!Cargo.toml\n!Cargo.lock\n!src/\n"
    try:
        attempt("", whitelist + "!benches/\n")
        results.fail("probe: the manifest's [[bench]] was not copied, yet the build passed")
    except BuildError as e:
        expect("can't find `b` bench" in str(e), f"probe: bench left out, unexpected failure: {e}")
    try:
        attempt("COPY benches ./benches\n", whitelist)
        results.fail("probe: COPY of a path the .dockerignore excludes was staged")
    except ContextError as e:
        expect("'benches' is not in the build context" in str(e), f"probe: unexpected: {e}")
    try:
        built = attempt("COPY benches ./benches\n", whitelist + "!benches/\n")
        expect(final_copies_from(built.stages, "build") == ["/probe"] and "/probe" in built.produced,
               f"probe: the final stage's COPY --from=build does not find {built.produced}")
    except (BuildError, ContextError) as e:
        results.fail(f"probe: the complete context did not build: {e}")


def manifest_outside_context(tmp):
    """The real context with one more target in Cargo.toml whose file the repository has
    and the context leaves out (an `[[example]]` for examples/download_floor.rs, as one
    would add to give it required-features): the Dockerfile's command must fail on the
    manifest. (Cargo looks for a target's file at its default path when it reads the
    manifest, as with the `[[bench]]` of issue 12; an explicit `path` only when it builds
    that target, which the image never does.) It shares the real build's directories, so
    were it to build after all it would cost an incremental build, not a full one."""
    example = "download_floor"
    _, patterns = dockerignore_for(DOCKERFILE, ROOT)
    path = f"examples/{example}.rs"
    if not expect((ROOT / path).is_file() and ignored(path, patterns),
                  f"{path} is missing or in the image's context; pick another probe target"):
        return
    repo = tmp / "outside"
    for f in context_files(ROOT, patterns) + [path, "deploy/Dockerfile", "deploy/Dockerfile.dockerignore"]:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, repo / f)
    with open(repo / "Cargo.toml", "a") as f:
        f.write(f'\n[[example]]\nname = "{example}"\n')
    try:
        build(repo, repo / "deploy" / "Dockerfile", WORK / "root", WORK / "cache")
        results.fail(f"deploy/Dockerfile: built although Cargo.toml names {path}, which the context leaves out")
    except BuildError as e:
        expect(f"can't find `{example}` example" in str(e), f"deploy/Dockerfile, {path} left out: {e}")
    except ContextError as e:
        results.fail(f"deploy/Dockerfile: {e}")


def real():
    try:
        built = build(ROOT, DOCKERFILE, WORK / "root", WORK / "cache")
    except (BuildError, ContextError) as e:
        results.fail(f"deploy/Dockerfile: {e}")
        return
    print(f"build-context: deploy/Dockerfile's cargo command took {built.seconds:.0f} s", flush=True)
    produced = built.produced
    sources = final_copies_from(built.stages, built.stage or "")
    expect(sources and all(s in produced for s in sources),
           f"deploy/Dockerfile: the final stage copies {sources}, the build stage made {sorted(produced)}")
    for s in sources:
        if s in produced:
            r = subprocess.run([produced[s], "--version"], capture_output=True, text=True)
            expect(r.returncode == 0 and r.stdout.startswith("entra-mfa-exporter "),
                   f"{s} --version: exit {r.returncode} {r.stdout}{r.stderr}")


def version(text):
    """`1.89` and `1.89.0` compare equal: padded to three parts."""
    parts = [int(x) for x in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def toolchain():
    """Cargo.toml's rust-version is at least every locked dependency's, at most the
    image's toolchain, and the one README.md's prerequisites name."""
    declared = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"].get("rust-version")
    if not expect(declared, "Cargo.toml: no rust-version"):
        return
    host = re.search(r"^host: (\S+)", subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout, re.M)
    r = subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
                        "--filter-platform", host.group(1)], cwd=ROOT, capture_output=True, text=True)
    if expect(r.returncode == 0, f"cargo metadata: {r.stderr[-2000:]}"):
        needs = max((version(p["rust_version"]), p["name"]) for p in json.loads(r.stdout)["packages"]
                    if p["rust_version"] and p["name"] != "entra-mfa-exporter")
        expect(version(declared) >= needs[0],
               f"Cargo.toml: rust-version {declared}, but {needs[1]} needs {'.'.join(map(str, needs[0]))}")
    image = re.search(r"^FROM rust:(\d+\.\d+)", DOCKERFILE.read_text(), re.M)
    expect(image and version(image.group(1)) >= version(declared),
           f"deploy/Dockerfile: its rust image is older than rust-version {declared}")
    expect(f"Rust {declared} or newer" in (ROOT / "README.md").read_text(),
           f"README.md: the prerequisites do not say Rust {declared} or newer")


def main():
    matcher_examples()
    toolchain()
    with tempfile.TemporaryDirectory(prefix="entra-build-context-") as tmp:
        probe(Path(tmp))
        manifest_outside_context(Path(tmp))
    real()
    return results.finish()


if __name__ == "__main__":
    sys.exit(main())
