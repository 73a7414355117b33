"""A reader of the project's Dockerfiles and of ``.dockerignore``, for checks without a Docker engine.

It covers the syntax ``deploy/docker/*.Dockerfile`` use: comments and parser directives,
line continuations, global ``ARG`` defaults substituted into ``FROM``, instruction flags
(``--from=``, ``--mount=``, ``--chmod=``) and the exec (JSON) form. Heredocs are not
supported. ``DockerIgnore`` applies ``.dockerignore`` the way the Docker engine does: the
last pattern that matches a path or one of its parent folders decides, ``!`` re-includes,
``*`` and ``?`` stay within one path element and ``**`` spans any number of them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper-case), leading ``--name=value`` flags and the rest."""

    keyword: str
    flags: tuple[tuple[str, str], ...]
    arguments: str
    line: int

    def flag(self, name: str) -> str | None:
        """The value of the flag ``--name`` (the last one given), or None."""
        values = self.flag_values(name)
        return values[-1] if values else None

    def flag_values(self, name: str) -> list[str]:
        """The values of every ``--name`` flag (``RUN`` may have several ``--mount``)."""
        return [value for key, value in self.flags if key == name]

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (``CMD ["a", "b"]``), or None for the shell form."""
        return json.loads(self.arguments) if self.arguments.startswith("[") else None

    def words(self) -> list[str]:
        """The arguments split as the shell would (``COPY src... dest``)."""
        return self.exec_form() or shlex.split(self.arguments)


@dataclass
class Stage:
    """A build stage: the image it starts from (build arguments substituted) and its instructions."""

    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


@dataclass
class Dockerfile:
    path: Path
    arguments: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"{self.path} has no stage {name!r}")

    def base_image(self, stage: Stage | None = None) -> str:
        """The image a stage (the final one by default) is built on, through the stages it starts from."""
        stage = stage or self.final
        names = {candidate.name: candidate for candidate in self.stages if candidate.name}
        while stage.base in names:
            stage = names[stage.base]
        return stage.base

    def external_bases(self) -> list[str]:
        """The images the stages start from that are not earlier stages."""
        names = {stage.name for stage in self.stages}
        return [stage.base for stage in self.stages if stage.base not in names]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text) with continuations joined and comments dropped."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments (parser directives included) and blank lines
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        result.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise ValueError(f"the instruction at line {start} ends with a line continuation")
    return result


def _substitute(text: str, variables: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), text)


def parse(path: Path) -> Dockerfile:
    """Read a Dockerfile into its global build arguments and its stages."""
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in _logical_lines(path.read_text()):
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        flags = []
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            name, _, value = token[2:].partition("=")
            flags.append((name, value))
            rest = rest.strip()
        instruction = Instruction(keyword, tuple(flags), rest, line)
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(_substitute(words[0], arguments), name, line))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"{path}:{line}: only ARG may come before the first FROM, not {keyword}")
            name, _, default = rest.partition("=")
            arguments[name.strip()] = default.strip().strip('"')
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise ValueError(f"{path} has no FROM")
    return Dockerfile(path, arguments, stages)


class DockerIgnore:
    """The exclusion rules of a ``.dockerignore``."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool]] = []  # (pattern, excludes)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            excludes = not line.startswith("!")
            pattern = line.lstrip("!").strip().strip("/")
            self.rules.append((_glob_regex(pattern), excludes))

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        return cls(path.read_text() if path.exists() else "")

    def excluded(self, relative: str) -> bool:
        """Whether the file or folder at ``relative`` (to the context root) stays out of the build context."""
        parts = relative.strip("/").split("/")
        candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        decision = False
        for pattern, excludes in self.rules:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                decision = excludes
        return decision


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", index)
            out.append(pattern[index : end + 1])
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))
