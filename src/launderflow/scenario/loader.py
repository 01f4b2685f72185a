"""Load scenario YAML into a validated :class:`Scenario`, or fail with ``file:line: field: message``.

Why a custom walk over PyYAML's node tree instead of ``yaml.safe_load``: the node tree keeps the
line of every key, so a pydantic error at ``playbook.2.wallets`` can be reported at the line the
author wrote it; and the walk can refuse what ``safe_load`` silently accepts (a duplicate key keeps
the last value; YAML 1.1 reads ``NO`` — Norway — as ``False``). ``extends: other.yaml`` merges a
parent scenario under the child (mappings merge key by key, everything else is replaced).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import series
from .budget import budget_problems
from .partial import partial_scenario
from .schema import Scenario, reference_problems

MAX_FILE_BYTES = 5_000_000
MAX_EXTENDS_DEPTH = 16
MAX_NODES = 50_000  # YAML nodes in one file as written (the bundled scenarios have < 600): bounds the parse
MAX_VALUES = 500_000  # values (mappings, lists, scalars) in one file once aliases are expanded
_TRUE_WORDS = {"true", "True", "TRUE"}
_FALSE_WORDS = {"false", "False", "FALSE"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, located as precisely as the input allows."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(Exception):
    """A scenario could not be loaded; ``problems`` lists every error found, each with its line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


Location = tuple[str, int]  # (file, line)


class _Document:
    """Plain data plus the source location of every mapping key and sequence item, and the YAML-level
    problems (duplicate keys, unreadable values) found while reading it, reported with the rest."""

    def __init__(self, data: Any, where: dict[tuple[Any, ...], Location], file: str,
                 problems: list[Problem] | None = None):
        self.data = data
        self.where = where
        self.file = file
        self.problems = problems or []

    def locate(self, path: tuple[Any, ...]) -> Location:
        """The location of the deepest prefix of ``path`` that exists in the file."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.where:
                return self.where[path[:end]]
        return (self.file, 1)


def _read_text(path: Path) -> str:
    """The file's text, read only if it is a regular file within the size cap (checked before reading).

    Opened without blocking so that a FIFO or a device is refused on sight, not read: ``/dev/zero``
    or a pipe would otherwise be read without end.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ScenarioError([Problem(str(path), None, "", "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(str(path), None, "", "is a directory, not a scenario file")]) from None
    except OSError as exc:
        why = "symbolic links loop" if exc.errno == errno.ELOOP else exc.strerror
        raise ScenarioError([Problem(str(path), None, "", f"cannot read: {why}")]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # (checked before fdopen, which refuses a directory with a traceback)
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError([Problem(str(path), None, "", "is a directory, not a scenario file")])
        raise ScenarioError([Problem(str(path), None, "", f"is not a regular file ({_file_kind(info.st_mode)}); "
                                                          f"a scenario is a YAML file")])
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > MAX_FILE_BYTES:
            raise ScenarioError([Problem(str(path), None, "", f"file is larger than {MAX_FILE_BYTES} bytes "
                                                              f"({info.st_size:,} bytes)")])
        try:
            raw = fh.read(MAX_FILE_BYTES + 1)  # it may have grown since fstat
        except OSError as exc:
            raise ScenarioError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError([Problem(str(path), None, "", f"file is larger than {MAX_FILE_BYTES} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(
            [Problem(str(path), line, "", f"byte 0x{raw[exc.start]:02x} is not valid UTF-8 (save the file as UTF-8)")]
        ) from None


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


class _NodeLimit(Exception):
    """More YAML nodes than MAX_NODES: raised while composing, so the work stops there."""

    def __init__(self, line: int):
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops after MAX_NODES nodes (a huge list under the size cap)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _NodeLimit(self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


def _compose(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _parse(path: Path) -> _Document:
    text = _read_text(path)
    file = str(path)
    try:
        root = _compose(text)
    except _NodeLimit as exc:
        raise ScenarioError([Problem(file, exc.line, "", f"the file has more than {MAX_NODES:,} YAML values "
                                                         f"(a scenario has hundreds)")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(x for x in (exc.context, exc.problem) if x)
        raise ScenarioError([Problem(file, line, "", f"malformed YAML: {message}")]) from None
    except yaml.reader.ReaderError as exc:  # a control character: it has a position, not a mark
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise ScenarioError([Problem(file, line, "", f"malformed YAML: unacceptable character {char}: {exc.reason}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(file, None, "", f"malformed YAML: {exc}")]) from None
    except RecursionError:
        raise ScenarioError([Problem(file, _too_deep_line(text), "", "YAML nesting is too deep")]) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        raise ScenarioError([Problem(file, 1, "", "the file is empty (expected a mapping of scenario fields)")])
    where: dict[tuple[Any, ...], Location] = {}
    problems: list[Problem] = []
    constructor = yaml.SafeLoader(text)
    try:
        data = _build(root, (), where, problems, file, constructor, depth=0)
    finally:
        constructor.dispose()
    if len(where) > MAX_VALUES:  # what was read is cut short: checking it further would only add noise
        raise ScenarioError(problems)
    if not isinstance(data, dict):
        raise ScenarioError([*problems, Problem(file, root.start_mark.line + 1, "", "expected a mapping of scenario fields at the top level")])
    return _Document(data, where, file, problems)


def _too_deep_line(text: str) -> int | None:
    """The line where nesting first gets deeper than 64 (the event parser, unlike compose, does not recurse)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > 64:
                    return event.start_mark.line + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except (yaml.YAMLError, RecursionError):
        pass
    return None


def _build(node: yaml.Node, path: tuple[Any, ...], where: dict, problems: list[Problem], file: str,
           constructor: yaml.SafeLoader, depth: int) -> Any:
    where[path] = (file, node.start_mark.line + 1)
    if len(where) > MAX_VALUES:  # every value has its own path: aliases (*a) that expand exponentially stop here
        if len(where) == MAX_VALUES + 1:
            problems.append(Problem(file, node.start_mark.line + 1, _dotted(path),
                                    f"the file expands to more than {MAX_VALUES:,} values (YAML aliases?)"))
        return None
    if depth > 64:
        problems.append(Problem(file, node.start_mark.line + 1, _dotted(path), "nesting is too deep"))
        return None
    if isinstance(node, yaml.MappingNode):
        if node.tag == "tag:yaml.org,2002:merge" or any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
            problems.append(Problem(file, node.start_mark.line + 1, _dotted(path), "YAML merge keys (<<) are not supported; use 'extends'"))
            return None
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted(path), "keys must be plain names"))
                continue
            key = key_node.value
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted((*path, key)),
                                        "duplicate key (each key may appear once in a mapping)"))
                continue
            out[key] = _build(value_node, (*path, key), where, problems, file, constructor, depth + 1)
            where[(*path, key)] = (file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), where, problems, file, constructor, depth + 1) for i, item in enumerate(node.value)]
    # Scalar: YAML 1.1 reads yes/no/on/off as booleans; only true/false are booleans here.
    if node.tag == "tag:yaml.org,2002:bool" and node.value not in _TRUE_WORDS | _FALSE_WORDS:
        return node.value
    try:
        return constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError, AttributeError, TypeError) as exc:
        detail = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line (the line is ours)
        problems.append(Problem(file, node.start_mark.line + 1, _dotted(path), f"unreadable value: {detail}"))
        return None


def parse_value(text: str) -> Any:
    """Read a command-line value the way scenario files are read (``NO`` stays a string)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return text
    if root is None:
        return text
    problems: list[Problem] = []
    constructor = yaml.SafeLoader(text)
    try:
        value = _build(root, (), {}, problems, "--set", constructor, depth=0)
    finally:
        constructor.dispose()
    return text if problems else value


def _merge(parent: _Document, child: _Document) -> _Document:
    """Child fields override the parent's; mappings merge key by key, lists are replaced whole."""
    where = dict(parent.where)

    def merge(a: Any, b: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for key, value in b.items():
                out[key] = merge(a[key], value, (*path, key)) if key in a else value
            return out
        for key in [k for k in where if k[: len(path)] == path and len(k) > len(path)]:
            del where[key]
        return b

    data = merge(parent.data, child.data, ())
    where.update(child.where)
    return _Document(data, where, child.file, [*parent.problems, *child.problems])


# ``extends`` may name files outside the scenario's directory tree and the current directory only when
# this is set (``--allow-extends-outside``): a scenario from elsewhere must not read the user's files.
allow_extends_outside: ContextVar[bool] = ContextVar("allow_extends_outside", default=False)
SCENARIO_SUFFIXES = (".yaml", ".yml")


@contextmanager
def extends_outside_allowed(allow: bool = True) -> Iterator[None]:
    """Within the block, ``extends`` may name scenario files anywhere (the user said so, or wrote them)."""
    token = allow_extends_outside.set(allow)
    try:
        yield
    finally:
        allow_extends_outside.reset(token)


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _resolve(path: Path, chain: tuple[Path, ...], roots: tuple[Path, ...] = ()) -> _Document:
    doc = _parse(path)
    parent_name = doc.data.pop("extends", None)
    if parent_name is None:
        return doc
    line = doc.where.get(("extends",), (doc.file, 1))[1]

    def problem(message: str) -> ScenarioError:
        return ScenarioError([Problem(doc.file, line, "extends", message)])

    if not isinstance(parent_name, str) or not parent_name.strip():
        raise problem("must be the path of another scenario file")
    shown = _dotted((parent_name,))
    try:
        roots = roots or (path.resolve().parent, Path.cwd().resolve())
        parent_path = (path.parent / parent_name).resolve()
        parent_is_file = parent_path.is_file()
        parent_exists = parent_path.exists()
    except RuntimeError:  # Python < 3.13: a symbolic link loop
        raise problem(f"{shown}: a loop of symbolic links") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise problem(f"{shown}: a loop of symbolic links") from None
        raise problem(f"no such scenario file: {shown}") from None
    except ValueError:  # a name the OS cannot take (a NUL byte)
        raise problem(f"no such scenario file: {shown}") from None
    if parent_path in chain or parent_path == path.resolve():
        cycle = " -> ".join(p.name for p in (*chain, path.resolve(), parent_path))
        raise problem(f"cycle in extends ({cycle})")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise problem(f"more than {MAX_EXTENDS_DEPTH} levels of extends")
    if not allow_extends_outside.get() and not _inside(parent_path, roots):
        raise problem(f"{shown} is outside the scenario's directory and the current directory "
                      f"(allowed: files under {' or '.join(map(str, dict.fromkeys(roots)))}; "
                      f"--allow-extends-outside to allow it)")
    if parent_path.suffix.lower() not in SCENARIO_SUFFIXES:
        raise problem(f"{shown} is not a scenario file (allowed: a {' or '.join(SCENARIO_SUFFIXES)} file)")
    if not parent_is_file:
        if parent_exists:  # a directory, a FIFO, a device: named for what it is, and never opened
            kind = "a directory" if parent_path.is_dir() else _file_kind(parent_path.stat().st_mode)
            raise problem(f"{shown} is not a regular file ({kind}); a scenario is a YAML file")
        raise problem(f"no such scenario file: {shown}")
    parent = _resolve(parent_path, (*chain, path.resolve()), roots)
    if not set(parent.data) & set(Scenario.model_fields):  # not a scenario: say nothing of what it holds
        raise problem(f"{shown} is not a scenario file (none of its top-level keys is a scenario field)")
    return _merge(parent, doc)


def load_data(path: str | Path) -> tuple[dict[str, Any], _Document]:
    """Read a scenario file (following ``extends``) into plain data, without validating it."""
    data, doc = _load_data(path)
    if doc.problems:
        raise ScenarioError(doc.problems)
    return data, doc


def _load_data(path: str | Path) -> tuple[dict[str, Any], _Document]:
    """Like :func:`load_data`, but YAML-level problems stay in ``doc.problems`` to be reported with the rest."""
    if isinstance(path, str) and not path.strip():  # Path("") is Path("."), the current directory: never meant
        raise ScenarioError([Problem(repr(path), None, "", "empty path (give the path of a YAML file)")])
    doc = _resolve(Path(path), ())
    return doc.data, doc


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None,
                  override_label: str = "--set {field}={value}") -> Scenario:
    """Read, merge and validate a scenario file; raise :class:`ScenarioError` listing every problem.

    ``overrides`` maps dotted field paths (``clock.horizon``) to values, as ``--set`` gives them. A
    problem in an overridden value is located at the override, not at a line of the file: at
    ``override_label`` filled with the field and value (the option or argument that gave it).
    """
    data, doc = _load_data(path)
    for dotted, value in (overrides or {}).items():
        _set_path(data, dotted, value, doc)
        # a problem in an overridden value is the --set option's, not a line of the file
        keys = tuple(int(k) if k.isascii() and k.isdigit() else k for k in dotted.split("."))
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        shown = shown if shown.isprintable() else repr(shown)[1:-1]  # (a problem prints on one line)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        doc.where = {loc: where for loc, where in doc.where.items() if loc[:len(keys)] != keys}
        doc.where[keys] = (override_label.format(field=_dotted(keys), value=shown), None)  # type: ignore[assignment]
    doc.problems += _read_price_series(data, doc, Path(path))
    return validate_document(apply_profiles(data, doc), doc)


def apply_profiles(data: Any, doc: _Document) -> Any:
    """Give each venue with ``profile: NAME`` the settings of ``profiles.NAME`` that it does not set
    itself (mappings merged key by key, the venue's own values winning).

    Profiles are how one file of shared behaviour (``scenarios/behaviour/dprk.yaml``) sets how every
    incident's exchanges and issuers respond: a joint calibration overrides ``profiles.NAME.FIELD``
    once and every venue using the profile follows. An unknown profile is a problem at the venue's
    ``profile`` line. Applied after ``--set`` overrides, so an override of a profile reaches its venues.
    """
    if not isinstance(data, dict) or not isinstance(data.get("venues"), dict):
        return data
    profiles = data.get("profiles") if isinstance(data.get("profiles"), dict) else {}

    def under(base: Any, own: Any) -> Any:
        if isinstance(base, dict) and isinstance(own, dict) and "dist" not in own:  # (a delay is replaced whole)
            out = dict(base)
            for key, value in own.items():
                out[key] = under(base[key], value) if key in base else value
            return out
        return own

    venues = dict(data["venues"])
    for name, venue in venues.items():
        if not isinstance(venue, dict) or "profile" not in venue:
            continue
        venue = dict(venue)
        profile = venue.pop("profile")
        if not isinstance(profile, str) or profile not in profiles or not isinstance(profiles[profile], dict):
            known = ", ".join(sorted(profiles)) or "none defined"
            doc.problems.append(Problem(*doc.locate(("venues", name, "profile")), f"venues.{name}.profile",
                                        f"unknown profile {profile!r} (defined: {known})"))
            continue
        venues[name] = under(profiles[profile], venue)
    return {**data, "venues": venues}


def _read_price_series(data: dict[str, Any], doc: _Document, path: Path) -> list[Problem]:
    """Read the price files the scenario names (``prices.<asset>.series``) into their ``points``.

    Paths are relative to the file that wrote the ``series`` key; a series that already carries
    its points (a scenario as run) is not read again. Problems come back located: in the scenario
    for a path that may not be read, in the price file for its contents.
    """
    prices = data.get("prices")
    if not isinstance(prices, dict):
        return []
    roots = (path.resolve().parent, Path.cwd().resolve())
    problems: list[Problem] = []
    for asset, entry in list(prices.items()):
        if not isinstance(entry, dict) or "series" not in entry or entry.get("points") is not None:
            continue
        key = ("prices", asset, "series")
        file, line = doc.locate(key)
        try:
            named = series.resolve(entry["series"], file, roots, allow_extends_outside.get())
            entry["points"] = series.read_points(named)
        except series.SeriesProblem as exc:
            if exc.file:
                problems.append(Problem(exc.file, exc.line, exc.column, exc.message))
            else:
                problems.append(Problem(file, line, _dotted(key), exc.message))
            del prices[asset]  # reported: the rest of the scenario is still checked, without this path
    return problems


def validate_document(data: dict[str, Any], doc: _Document) -> Scenario:
    """The Scenario, or a ScenarioError with every problem at once, sorted by file and line:
    the YAML-level ones, the fields pydantic refuses and the cross-references (of the parts of the
    scenario that are valid, so an unknown venue shows up next to a negative amount)."""
    problems = list(doc.problems)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        field_problems = [_problem_from_pydantic(err, doc) for err in errors
                          if not (err.get("input", "") is None and _under(_dotted_loc(err, doc), problems))]
        problems += field_problems
        # (a reference at a field pydantic refused was reported as that field's problem)
        problems += [p for p in _located(reference_problems(partial_scenario(data)), doc)
                     if p.path not in {f.path for f in field_problems}]
        raise ScenarioError(_by_line(problems, doc.file)) from None
    problems += _located(reference_problems(scenario), doc)
    if not problems:  # the budget needs valid references (venues, assets); refuse what would not fit a run
        problems = _located(budget_problems(scenario), doc)
    if problems:
        raise ScenarioError(_by_line(problems, doc.file))
    return scenario


def _located(found: list[tuple[tuple[Any, ...], str]], doc: _Document) -> list[Problem]:
    return [Problem(*doc.locate(loc), _dotted(loc), msg) for loc, msg in found]


def _dotted_loc(err: dict[str, Any], doc: _Document) -> str:
    return _dotted(_clean_loc(tuple(err["loc"]), doc.data))


def _under(path: str, problems: list[Problem]) -> bool:
    """``path`` is the path of one of ``problems``, or inside it (a value already reported)."""
    return any(path == p.path or path.startswith(p.path + ".") for p in problems if p.path)


def _by_line(problems: list[Problem], first_file: str) -> list[Problem]:
    """Sorted by line within each file: the file given first, then its parents (``extends``) as they
    appear. The sort is stable: problems on one line keep their order (YAML, field, reference)."""
    files = list(dict.fromkeys([first_file, *(p.file for p in problems)]))
    return sorted(problems, key=lambda p: (files.index(p.file), p.line or 0))


def _set_path(data: dict[str, Any], dotted: str, value: Any, doc: _Document) -> None:
    keys: list[Any] = [int(k) if k.isascii() and k.isdigit() else k for k in dotted.split(".")]
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, dict) and key not in node and not isinstance(keys[i + 1], int):
            node[key] = {}  # a section the file leaves at its defaults; the schema checks the key
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise ScenarioError([Problem(doc.file, None, _dotted(tuple(keys[: i + 1])), "no such field to override")]) from None
    if isinstance(node, list) and isinstance(keys[-1], int) and keys[-1] >= len(node):
        raise ScenarioError([Problem(doc.file, None, _dotted(tuple(keys)), f"index out of range (the list has {len(node)} items)")])
    if not isinstance(node, (dict, list)) or (isinstance(node, list) and not isinstance(keys[-1], int)):
        raise ScenarioError([Problem(doc.file, None, _dotted(tuple(keys)), "no such field to override")])
    node[keys[-1]] = value


def _dotted(path: tuple[Any, ...]) -> str:
    # keys with line breaks or control characters are escaped: a problem stays on one line
    return ".".join(str(p) if str(p).isprintable() else repr(str(p))[1:-1] for p in path)


def _allowed_keys(data: Any, loc: tuple[Any, ...]) -> str:
    """For an unknown key, list the keys the enclosing model accepts."""
    model = _model_at(data, loc[:-1])
    if model is None:
        return ""
    return " (allowed: " + ", ".join(model.model_fields) + ")"


def _model_at(data: Any, loc: tuple[Any, ...]) -> Any:
    """Walk the schema along ``loc`` (following the data's discriminators) to the model there."""
    from . import schema as s

    model: Any = s.Scenario
    node = data
    for part in loc:
        if model is None:
            return None
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        model = _child_model(model, part, node)
    return model


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


def _child_model(model: Any, part: Any, node: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(model, type) and issubclass(model, BaseModel):
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        return _unwrap(field.annotation, node)
    return _unwrap(model, node, part)


def _unwrap(annotation: Any, node: Any, part: Any = None) -> Any:
    import typing

    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unwrap(args[0], node, part)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if arg is type(None):
                continue
            inner = _unwrap(arg, node, part)
            if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(node, dict):
                tag_field = next((f for f in ("kind", "hop", "dist") if f in inner.model_fields), None)
                if tag_field is None:
                    return inner
                literal = typing.get_args(inner.model_fields[tag_field].annotation)
                if node.get(tag_field) in literal:
                    return inner
            elif inner is not None and not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return inner
        return None
    if origin in (list, dict):
        return annotation if part is None else _unwrap(args[-1], node)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _clean_loc(loc: tuple[Any, ...], data: Any, tags: tuple[str, ...] = ("kind", "hop", "dist")) -> tuple[Any, ...]:
    """Drop what pydantic inserts into error paths but the author never wrote.

    A discriminated union adds its tag after the item's path (``playbook.0.split.wallets``) and a
    validator wrapper adds names like ``function-before[...]``; both are recognised by position —
    a tag only where the data there is a mapping whose kind field holds it and has no such key.
    """
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or "[" in part) and not (
                isinstance(node, dict) and part in node):  # (a key the author wrote is kept)
            continue
        if isinstance(node, dict) and part not in node and any(node.get(f) == part for f in tags):
            continue
        if part == "fixed" and not isinstance(node, (dict, list)):
            continue  # the ``delay: 2h`` shorthand became {dist: fixed, value: 2h}
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _problem_from_pydantic(err: dict[str, Any], doc: _Document) -> Problem:
    loc = _clean_loc(tuple(err["loc"]), doc.data)
    file, line = doc.locate(loc)
    kind = err["type"]
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "extra_forbidden":
        msg = "unknown field" + _allowed_keys(doc.data, loc)
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        msg = f"unknown {ctx.get('discriminator', 'kind').strip(chr(39))} {ctx.get('tag')!r} (allowed: {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        ctx = err.get("ctx", {})
        msg = f"needs a {ctx.get('discriminator', 'kind').strip(chr(39))} field naming its kind"
    elif kind in ("greater_than_equal", "greater_than", "less_than", "less_than_equal", "too_short", "too_long",
                  "string_pattern_mismatch", "literal_error", "int_parsing", "float_parsing", "int_type",
                  "float_type", "bool_type", "bool_parsing", "string_type", "dict_type", "list_type",
                  "model_type", "int_from_float", "finite_number"):
        got = err.get("input")
        shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{msg[0].lower()}{msg[1:]} (got {shown})"
    return Problem(file, line, _dotted(loc), msg)

