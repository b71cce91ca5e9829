"""What `docker build` sends and copies, without a Docker engine.

A `.dockerignore` reader and matcher with Docker's semantics (moby/patternmatcher and
its ignorefile reader: `*`, `?`, `[...]`, `**`, `!` exceptions, the last matching line
wins, a pattern that matches a parent directory matches everything under it, excluded
directories are not walked unless an exception names a path below them), and a reader of
a Dockerfile's stages, COPY and RUN instructions. tests/check_build_context.py stages a
stage's COPYs into a directory and runs its cargo command there.
"""

import fnmatch
import json
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


class ContextError(Exception):
    """The Dockerfile asks for something the build context cannot give it (or something
    this reader does not model, which must not pass silently)."""


# ---------------------------------------------------------------------------------------
# .dockerignore


@dataclass
class Pattern:
    """One cleaned .dockerignore line; `exclusion` is a `!` exception."""

    text: str
    exclusion: bool
    kind: str = "exact"  # exact, prefix, suffix or regexp, as patternmatcher compiles it
    regex: re.Pattern | None = None

    def match(self, path):
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])  # the pattern without its "**"
        if self.kind == "suffix":
            suffix = self.text[2:]  # "**" + a literal: the path ends with it
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        return bool(self.regex.match(path))


def _compile(text, exclusion):
    """Ports patternmatcher's Pattern.compile: wildcards become a regexp anchored at both
    ends; a literal pattern, a trailing `**` and a leading `**` before a literal keep
    their cheaper match (whose results differ from the regexp's in corner cases)."""
    p = Pattern(text, exclusion)
    regex, i, n = "^", 0, len(text)
    while i < n:
        start, ch = i, text[i]
        i += 1
        if ch == "*" and i < n and text[i] == "*":
            i += 1
            if i < n and text[i] == "/":  # "**/" is "**"
                i += 1
            if i == n:  # "**" at the end: everything
                if p.kind == "exact":
                    p.kind = "prefix"
                else:
                    regex += ".*"
                    p.kind = "regexp"
            else:  # any number of directories, even none
                regex += "(.*/)?"
                p.kind = "regexp"
            if start == 0:
                p.kind = "suffix"
        elif ch == "*":
            regex += "[^/]*"
            p.kind = "regexp"
        elif ch == "?":
            regex += "[^/]"
            p.kind = "regexp"
        elif ch == "\\":
            if i < n:
                regex += re.escape(text[i])
                i += 1
                p.kind = "regexp"
            else:
                regex += "\\\\"
        elif ch in "[]":
            regex += ch
            p.kind = "regexp"
        else:
            regex += re.escape(ch)
    if p.kind == "regexp":
        p.regex = re.compile(regex + "$")
    return p


def read_dockerignore(text):
    """The patterns of a .dockerignore, as Docker reads them: comment lines (`#` first)
    and blank lines skipped, surrounding space trimmed, each path cleaned (`./`, `//`,
    `..` and a trailing `/` resolved, a leading `/` dropped)."""
    patterns = []
    for line in text.lstrip("\ufeff").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if line.startswith("//"):
                line = line[1:]
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(_compile(line, exclusion))
    return patterns


def ignored(path, patterns):
    """patternmatcher.MatchesOrParentMatches: is `path` (relative, `/`-separated) left
    out of the context? Later lines override earlier ones."""
    parent = posixpath.dirname(path)
    parents = parent.split("/") if parent else []
    matched = False
    for p in patterns:
        if p.exclusion != matched:
            continue  # an exclusion only undoes a match, an inclusion only makes one
        hit = p.match(path)
        if not hit:
            hit = any(p.match("/".join(parents[: i + 1])) for i in range(len(parents)))
        if hit:
            matched = not p.exclusion
    return matched


def _may_hold_exception(directory, patterns):
    """Docker walks into an excluded directory only when some `!` line's text starts
    with it (the check in archive.TarWithOptions and fsutil)."""
    prefix = directory + "/"
    return any(p.exclusion and (p.text + "/").startswith(prefix) for p in patterns)


def context_files(root, patterns):
    """Every regular file (relative path) that `docker build` sends from `root`."""
    root = Path(root)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        keep = []
        for d in sorted(dirnames):
            sub = f"{rel}/{d}" if rel else d
            if not ignored(sub, patterns) or _may_hold_exception(sub, patterns):
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            sub = f"{rel}/{f}" if rel else f
            if not ignored(sub, patterns) and (Path(dirpath) / f).is_file():
                files.append(sub)
    return sorted(files)


def dockerignore_for(dockerfile, context):
    """BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile in preference to
    the context's `.dockerignore`. Returns (path or None, patterns)."""
    for candidate in (Path(f"{dockerfile}.dockerignore"), Path(context) / ".dockerignore"):
        if candidate.is_file():
            return candidate, read_dockerignore(candidate.read_text())
    return None, []


# ---------------------------------------------------------------------------------------
# Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list = field(default_factory=list)


def read_dockerfile(text):
    """Stages and instructions: comments dropped, `\\` continuations joined."""
    stages, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line, pending = (pending + stripped).strip(), ""
        if not line:
            continue
        keyword, _, args = line.partition(" ")
        ins = Instruction(keyword.upper(), args.strip(), start)
        if ins.keyword == "FROM":
            words = ins.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:  # an ARG before the first FROM only parameterises FROM lines
            stages[-1].instructions.append(ins)
    return stages


def copy_args(ins):
    """(flags, sources, destination) of a COPY, shell or JSON form."""
    flags, rest = {}, ins.args
    while (m := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest)):
        flags[m.group(1)] = m.group(2) or ""
        rest = rest[m.end():]
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    if len(words) < 2:
        raise ContextError(f"line {ins.line}: COPY needs a source and a destination")
    return flags, words[:-1], words[-1]


def substitute(text, env):
    """`$VAR` and `${VAR}` from ARG defaults and ENV, as the Dockerfile parser expands them
    in ENV, WORKDIR and COPY (unknown variables are empty)."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), ""), text)


@dataclass
class Copy:
    """One file a COPY puts into the image: its context path and its image path."""

    source: str
    target: str


def plan_copies(stage, files):
    """Walks a stage's instructions and returns (workdir, env, copies, runs). `files` is
    the context's file list. A source that matches nothing in the context (because it is
    missing or excluded) is a ContextError, as it is a build error in Docker."""
    workdir, env, copies, runs = "/", {}, [], []
    present = set(files)
    dirs = {posixpath.dirname(f) for f in files}
    for f in list(dirs):
        while f:
            f = posixpath.dirname(f)
            dirs.add(f)
    for ins in stage.instructions:
        if ins.keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, substitute(ins.args, env)))
        elif ins.keyword == "ARG":
            k, _, v = ins.args.partition("=")
            env.setdefault(k, substitute(v, env))
        elif ins.keyword == "ENV":
            pairs = re.findall(r'(\w+)=("[^"]*"|\S+)', ins.args)
            if not pairs:  # the legacy `ENV key value` form
                k, _, v = ins.args.partition(" ")
                pairs = [(k, v.strip())]
            for k, v in pairs:
                env[k] = substitute(v.strip('"'), env)
        elif ins.keyword == "ADD":
            raise ContextError(f"line {ins.line}: ADD is not modelled; use COPY")
        elif ins.keyword == "COPY":
            flags, sources, dest = copy_args(ins)
            if "from" in flags:
                continue
            unknown = set(flags) - {"chown", "chmod", "link"}
            if unknown:
                raise ContextError(f"line {ins.line}: COPY --{', --'.join(sorted(unknown))} is not modelled")
            dest = substitute(dest, env)
            dest_dir = dest.endswith("/") or len(sources) > 1 or any(c in "".join(sources) for c in "*?[")
            dest = posixpath.normpath(posixpath.join(workdir, dest))
            for src in sources:
                src = posixpath.normpath(substitute(src, env)).lstrip("/")
                src = "" if src == "." else src
                wild = any(c in src for c in "*?[")
                names = [n for n in present | dirs if fnmatch.fnmatchcase(n, src)] if wild else [src]
                matched = False
                for name in sorted(names):
                    if name in present:
                        target = posixpath.join(dest, posixpath.basename(name)) if dest_dir else dest
                        copies.append(Copy(name, target))
                        matched = True
                    elif name in dirs:
                        # A directory's contents, not the directory itself.
                        prefix = f"{name}/" if name else ""
                        for f in sorted(present):
                            if f.startswith(prefix):
                                copies.append(Copy(f, posixpath.join(dest, f[len(prefix):])))
                                matched = True
                if not matched:
                    raise ContextError(
                        f"line {ins.line}: COPY source {src!r} is not in the build context "
                        "(missing, or excluded by the .dockerignore)")
        elif ins.keyword == "RUN":
            runs.append(ins)
    return workdir, env, copies, runs


def run_parts(ins):
    """(cache mounts' targets, the shell command split on `&&` into word lists)."""
    words = ins.args.split(" ")
    mounts = []
    while words and (words[0].startswith("--") or not words[0]):
        w = words.pop(0)
        if w.startswith("--mount="):
            opts = dict(o.partition("=")[::2] for o in w[len("--mount="):].split(","))
            if opts.get("type") != "cache":
                raise ContextError(f"line {ins.line}: RUN {w} is not modelled (cache mounts only)")
            mounts.append(opts["target"])
        elif w:
            raise ContextError(f"line {ins.line}: RUN {w} is not modelled")
    command = " ".join(words)
    if command.startswith("["):
        raise ContextError(f"line {ins.line}: RUN in JSON form is not modelled")
    return mounts, [shlex.split(part) for part in command.split("&&")]
