"""Reading a Dockerfile (its stages; what one target builds) and .dockerignore (what is sent)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile, with comments dropped and line continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", arguments, re.I)
            if match is None:
                raise ValueError(f"cannot parse FROM {arguments!r}")
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"{keyword} before the first FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return stages


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on clean paths."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


@dataclass(frozen=True)
class DockerIgnore:
    """Docker's rules: the last matching pattern wins; `!` re-includes; a pattern that
    matches a directory matches everything below it."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...]

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = os.path.normpath(line[1:] if include else line).lstrip("/")
            rules.append((include, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def excludes(self, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for include, regex in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not include
        return excluded


# Local tool and cache directories: large, never part of a build (the rules exclude them
# too, which test_dockerfiles checks); not walking them keeps the test fast.
_NOT_WALKED = frozenset({".git", ".venv", ".tools", ".run", ".mypy_cache", ".ruff_cache"})


def build_context(root: Path, ignore: DockerIgnore) -> set[str]:
    """Paths (relative, posix) of the files a `docker build` of `root` would send."""
    sent = set()
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _NOT_WALKED]
        for filename in filenames:
            relative = (Path(directory) / filename).relative_to(root).as_posix()
            if not ignore.excludes(relative):
                sent.add(relative)
    return sent


_FROM = re.compile(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.I)
_ARG = re.compile(r"ARG\s+(\w+)(?:=(\S*))?", re.I)
# `COPY --from=<stage>` and `RUN --mount=...,from=<stage>,...`
_STAGE_REFERENCE = re.compile(r"(?:--|,)from=([^\s,]+)", re.I)


def _stage_blocks(text: str) -> tuple[list[str], list[list[str]]]:
    """The lines before the first FROM, and each stage's lines (its FROM to the next).

    A comment paragraph right above a FROM (a section heading) goes with that stage.
    """
    preamble: list[str] = []
    blocks: list[list[str]] = []
    for line in text.splitlines():
        current = blocks[-1] if blocks else preamble
        if _FROM.fullmatch(line.strip()):
            heading: list[str] = []
            while current and current[-1].lstrip().startswith("#"):
                heading.insert(0, current.pop())
            blocks.append([*heading, line])
        else:
            current.append(line)
    return preamble, blocks


def _substitute(line: str, values: dict[str, str]) -> str:
    """`$NAME` and `${NAME}` of the arguments in `values`; anything else stays as written."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match.group(1) or match.group(2), match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, line)


def render_for_target(text: str, target: str, build_args: dict[str, str]) -> str:
    """The Dockerfile as `docker build --target <target> --build-arg K=V ...` builds it.

    Only the stages the target needs are kept (BuildKit builds nothing else): the target,
    the stage it is built FROM, those it copies or mounts from, and so on. An argument is
    substituted where Docker expands it: in a stage after the `ARG` that declares it there
    (in FROM lines, after a global `ARG`), with the value passed or else the declared
    default. Elsewhere `$NAME` stays as written, so a stage that forgot its `ARG` shows
    it. Every `ARG` line is written with its value; comments (checkov skips) are kept.
    """
    preamble, blocks = _stage_blocks(text)
    stages = [parse_dockerfile("\n".join(block))[0] for block in blocks]
    index_of = {stage.name.lower(): i for i, stage in enumerate(stages) if stage.name}
    if target.lower() not in index_of:
        raise ValueError(f"no stage named {target!r}")

    def needs(stage: Stage) -> set[int]:
        references = {stage.base}
        for instruction in stage.instructions:
            if instruction.keyword in ("COPY", "RUN"):
                references.update(_STAGE_REFERENCE.findall(instruction.arguments))
        return {index_of[r.lower()] for r in references if r.lower() in index_of}

    wanted: set[int] = set()
    pending = [index_of[target.lower()]]
    while pending:
        index = pending.pop()
        if index not in wanted:
            wanted.add(index)
            pending += needs(stages[index])

    def declare(line: str, defaults: dict[str, str], scope: dict[str, str]) -> str | None:
        """An ARG line written with its value (recorded in `scope`); None if not an ARG."""
        match = _ARG.fullmatch(line.strip())
        if match is None:
            return None
        name, default = match.group(1), match.group(2)
        value = build_args.get(name, default if default is not None else defaults.get(name))
        if value is None:
            return line
        scope[name] = value
        return f"ARG {name}={value}"

    rendered: list[str] = []
    global_args: dict[str, str] = {}
    for line in preamble:
        rendered.append(declare(line, {}, global_args) or line)
    for index in sorted(wanted):
        in_scope: dict[str, str] = {}
        for line in blocks[index]:
            if _FROM.fullmatch(line.strip()):
                rendered.append(_substitute(line, global_args))
                continue
            if line.lstrip().startswith("#"):
                rendered.append(line)  # Docker expands nothing in comments
                continue
            arg = declare(line, global_args, in_scope)
            rendered.append(arg if arg is not None else _substitute(line, in_scope))
    return "\n".join(rendered) + "\n"
