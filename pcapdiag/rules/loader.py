"""Rule files: safe YAML -> JSON Schema -> semantic checks -> frozen `Rule`.

Every problem is collected with its location (`path:line`), and all of them are raised at once
as one `RuleError`, so `pcapdiag rules check` can list them all. YAML is read with a SafeLoader
subclass only (no Python object tags); aliases are refused outright, which also rules out
"billion laughs" alias bombs.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pcapdiag.errnos import ERRNO, PLATFORMS
from pcapdiag.errors import RuleError
from pcapdiag.track.events import EVENT_TYPES, event_fields

if TYPE_CHECKING:
    import jsonschema

RULE_SCHEMA_ID = "pcapdiag.rule/v1"
MAX_RULE_FILE_BYTES = 256 * 1024
_RESERVED_BINDINGS = ("start", "end")
# Fields of the flow record that `match.flow` predicates may test.
FLOW_FIELDS = (
    "proto",
    "roles",
    "handshake",
    "client_packets",
    "server_packets",
    "client_bytes",
    "server_bytes",
    "client_state",
    "server_state",
    "end_reason",
)


class LineDict(dict[str, Any]):
    """A mapping that remembers the line (1-based) each key was written on."""

    lines: dict[str, int]
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that records line numbers and refuses aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in rule files", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = {
            str(k.value): k.start_mark.line + 1
            for k, _ in node.value
            if isinstance(k, yaml.ScalarNode)
        }
        return mapping


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _Loader.construct_mapping,  # type: ignore[arg-type]
)

_CSafeLoader = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml


def _parse(text: str) -> Any:
    """The rule file's data (LineDicts). libyaml parses a valid file several times faster
    than the pure-Python parser; anything it finds wrong, and any alias, is parsed again by
    _Loader, whose errors (and alias refusal) are the ones reported."""
    if _CSafeLoader is not None:
        loader = _CSafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and not _has_alias(node):
                return _construct(loader, node)
        except yaml.YAMLError:
            pass
        finally:
            loader.dispose()
    return yaml.load(text, Loader=_Loader)


def _construct(loader: Any, node: Any) -> Any:
    # _Loader's constructors (line numbers) on a node tree composed by libyaml.
    constructor = _Loader.__new__(_Loader)
    yaml.constructor.SafeConstructor.__init__(constructor)
    return constructor.construct_document(node)


def _has_alias(node: Any) -> bool:
    """An alias composes to the very node its anchor names: a node met twice."""
    seen: set[int] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            return True
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                todo += (k, v)
        elif isinstance(n, yaml.SequenceNode):
            todo += n.value
    return False


@dataclass(frozen=True)
class Rule:
    """A loaded, validated rule. `data` is the rule file's content as plain data."""

    id: str
    rev: int
    name: str
    title: str
    severity: str
    status: str
    proto: str
    path: Path
    data: dict[str, Any]

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        """Parameter defaults (computed once: read for every flow)."""
        return {k: v["default"] for k, v in self.data.get("params", {}).items()}

    @functools.cached_property
    def step_events(self) -> tuple[str, ...]:
        """The event names the match sequence needs, each once: a flow without one of them
        cannot match (read for every flow)."""
        return tuple(dict.fromkeys(step["event"] for step in self.data["match"]["sequence"]))

    @property
    def overrides(self) -> tuple[str, ...]:
        return tuple(self.data.get("overrides", ()))


@functools.cache
def _schema_text() -> str:
    return resources.files("pcapdiag").joinpath("schemas/rule-v1.schema.json").read_text()


def _schema() -> dict[str, Any]:
    return json.loads(_schema_text())  # type: ignore[no-any-return]


# Digests of rule files already validated against this very schema (see validated_digest):
# the built-in rules, listed in VALIDATED_FILE beside them and kept current by
# tests/test_rules_validated.py, which validates each one. A file listed there is not
# validated again at every start: jsonschema alone takes a fifth of a small run's time to
# import. Any other file, or a listed one changed by a byte, is validated.
VALIDATED_FILE = "validated.sha256"


def validated_digest(text: str) -> str:
    """What identifies a rule file's text as validated by the current schema."""
    return hashlib.sha256(f"{_schema_text()}\0{text}".encode()).hexdigest()


@functools.cache
def _validated() -> frozenset[str]:
    try:
        listed = (builtin_rules_dir() / VALIDATED_FILE).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    return frozenset(line.strip() for line in listed.splitlines() if line.strip())


def schema_problems(path: Path, data: Any) -> list[str]:
    """What the rule schema finds wrong in a rule file's data, each with path:line."""
    import jsonschema  # here: its import is a cost that already-validated rules skip

    return [
        f"{path}:{_line_of(data, list(err.absolute_path))}: {_schema_message(err)}"
        for err in sorted(
            jsonschema.Draft202012Validator(_schema()).iter_errors(data),
            key=lambda e: list(map(str, e.absolute_path)),
        )
    ]


def builtin_rules_dir() -> Path:
    """The built-in rules: inside the installed wheel, or `rules/` of a source checkout."""
    packaged = Path(str(resources.files("pcapdiag"))) / "_builtin_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yaml") if p.is_file())


def load_rules(dirs: Iterable[Path] | None = None, *, builtin: bool = True) -> list[Rule]:
    """Load the built-in rules plus every `*.yaml` under `dirs`; RuleError lists all problems."""
    paths: list[Path] = []
    if builtin:
        paths += rule_files(builtin_rules_dir())
    for d in dirs or ():
        if d.is_file():
            paths.append(d)
        elif d.is_dir():
            paths += rule_files(d)
        else:
            raise RuleError([f"{d}: no such rule file or directory"])
    problems: list[str] = []
    rules: list[Rule] = []
    for path in paths:
        rule, errs = load_rule_file(path)
        problems += errs
        if rule is not None:
            rules.append(rule)
    problems += _cross_rule_problems(rules)
    if problems:
        raise RuleError(problems)
    return rules


def load_rule_file(path: Path) -> tuple[Rule | None, list[str]]:
    """Load one rule file: the rule, or None and the problems found (each with path:line)."""
    try:
        size = path.stat().st_size
        if size > MAX_RULE_FILE_BYTES:
            return None, [
                f"{path}:1: rule file is {size} bytes, over the {MAX_RULE_FILE_BYTES} limit"
            ]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}:1: cannot read rule file: {exc}"]
    try:
        data = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and cmark.line + 1 != line:
            what += f" ({context} at line {cmark.line + 1})"
        return None, [f"{path}:{line}: YAML error: {what}"]
    if not isinstance(data, LineDict):
        return None, [f"{path}:1: a rule file must be a YAML mapping"]
    if validated_digest(text) not in _validated():
        problems = schema_problems(path, data)
        if problems:
            return None, problems
    problems = list(_semantic_problems(path, data))
    if problems:
        return None, problems
    return Rule(
        id=data["id"],
        rev=data["rev"],
        name=data["name"],
        title=data["title"],
        severity=data["severity"],
        status=data["status"],
        proto=data["proto"],
        path=path,
        data=data,
    ), []


def _schema_message(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "oneOf" and err.context:
        best = min(err.context, key=lambda e: len(list(e.absolute_path)))
        return f"{where}: {best.message}"
    return f"{where}: {err.message}"


def _line_of(data: Any, path: list[Any]) -> int:
    """Best line for a JSON path into the loaded YAML: the deepest mapping key found."""
    line = data.line if isinstance(data, LineDict) else 1
    node = data
    for part in path:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, LineDict):
                line = node.line
        else:
            break
    return line


def _semantic_problems(path: Path, data: LineDict) -> Iterator[str]:
    """What the schema cannot say: names that must exist and be defined before use."""
    params = set(data.get("params", {}))
    match = data["match"]
    bound: dict[str, str] = {}  # binding -> event name

    def at(node: Any, key: str | None = None) -> str:
        if isinstance(node, LineDict):
            return f"{path}:{node.lines.get(key, node.line) if key else node.line}"
        return f"{path}:{data.line}"

    def check_value(node: Any, value: Any) -> Iterator[str]:
        if isinstance(value, str) and value.startswith("$") and value[1:] not in params:
            yield f"{at(node)}: unknown parameter {value!r} (declare it under params)"

    def check_pred(node: Any, fields: tuple[str, ...] | None, what: str) -> Iterator[str]:
        if "all" in node or "any" in node:
            for sub in node.get("all", node.get("any", [])):
                yield from check_pred(sub, fields, what)
        elif "not" in node:
            yield from check_pred(node["not"], fields, what)
        else:
            if fields is not None and node["field"] not in fields:
                yield (
                    f"{at(node, 'field')}: {what} has no field {node['field']!r} "
                    f"(known: {', '.join(fields)})"
                )
            for op, value in node.items():
                if op != "field":
                    values = value if isinstance(value, list) else [value]
                    for v in values:
                        yield from check_value(node, v)

    def check_side(node: Any, key: str) -> Iterator[str]:
        spec = node.get(key)
        if isinstance(spec, dict):
            ref = spec.get("sender_of") or spec.get("receiver_of")
            if ref not in bound:
                yield f"{at(node, key)}: {key} refers to {ref!r}, which is not bound before it"

    def check_binding(node: Any, key: str, name: str) -> Iterator[str]:
        if name not in bound and name not in _RESERVED_BINDINGS:
            yield f"{at(node, key)}: {name!r} is not bound by an earlier sequence step"

    if "flow" in match:
        yield from check_pred(match["flow"], FLOW_FIELDS, "the flow record")
    for step in match["sequence"]:
        name = step["as"]
        if name in bound or name in _RESERVED_BINDINGS:
            yield f"{at(step, 'as')}: binding {name!r} is already used"
        yield from check_side(step, "from")
        if "where" in step:
            yield from check_pred(
                step["where"], event_fields(step["event"]), f"event {step['event']!r}"
            )
        for key in ("within", "not_within"):
            if key in step:
                yield from check_binding(step[key], "after", step[key]["after"])
                yield from check_value(step[key], step[key]["ms"])
        bound[name] = step["event"]
    for clause in match.get("absent", []) + match.get("counts", []):
        yield from check_side(clause, "from")
        if "where" in clause:
            yield from check_pred(
                clause["where"], event_fields(clause["event"]), f"event {clause['event']!r}"
            )
        for b in clause["between"]:
            yield from check_binding(clause, "between", b)
        for op in ("ge", "le", "eq"):
            if op in clause:
                yield from check_value(clause, clause[op])
    counts = {c["as"] for c in match.get("counts", [])}
    outcome = data["outcome"]
    side = outcome["side"]
    if isinstance(side, dict):
        ref = side.get("sender_of") or side.get("receiver_of")
        if ref not in bound:
            yield f"{at(outcome, 'side')}: side refers to {ref!r}, which is not bound"
    if side == "any":
        yield f"{at(outcome, 'side')}: the outcome must name one side, not 'any'"
    for ref in outcome["evidence"]:
        name, _, pick = ref.partition(".")
        if name not in bound and name not in counts and name != "end":
            yield f"{at(outcome, 'evidence')}: evidence {name!r} is neither a binding nor a count"
        elif pick and name not in counts:
            yield f"{at(outcome, 'evidence')}: {ref!r}: .first/.last apply to counts only"
    for platform, effects in outcome["effects"].items():
        for eff in effects:
            names = [eff["errno"]] if eff.get("errno") else []
            if "errno_from" in eff:
                src = eff["errno_from"]
                if src["binding"] not in bound:
                    yield f"{at(eff)}: errno_from refers to unbound {src['binding']!r}"
                elif src["field"] not in event_fields(bound[src["binding"]]):
                    ev_name = bound[src["binding"]]
                    yield f"{at(eff)}: event {ev_name!r} has no field {src['field']!r}"
                names += list(src["map"].values())
            for n in names:
                if n not in ERRNO[platform]:
                    yield f"{at(eff)}: {n!r} is not an errno name on {platform}"
    for test in data["tests"]:
        cap = path.parent / test["capture"]
        if not cap.is_file():
            yield f"{at(test, 'capture')}: test capture {test['capture']!r} not found"
        for exp in test["expect"]:
            if exp.get("errno") is not None:
                platform = test.get("platform", "linux")
                if exp["errno"] not in ERRNO[platform]:
                    yield f"{at(exp)}: {exp['errno']!r} is not an errno name on {platform}"
    if data["status"] in ("test", "stable") and not data["tests"]:
        yield f"{at(data, 'tests')}: a {data['status']} rule needs test cases"


def _cross_rule_problems(rules: list[Rule]) -> list[str]:
    problems: list[str] = []
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            line = rule.data.lines.get("id", 1) if isinstance(rule.data, LineDict) else 1
            problems.append(
                f"{rule.path}:{line}: duplicate rule id {rule.id} (also {seen[rule.id].path})"
            )
        seen.setdefault(rule.id, rule)
    for rule in rules:
        for other in rule.overrides:
            if other not in seen:
                line = rule.data.lines.get("overrides", 1) if isinstance(rule.data, LineDict) else 1
                problems.append(f"{rule.path}:{line}: overrides unknown rule {other}")
    return problems


__all__ = ["EVENT_TYPES", "PLATFORMS", "Rule", "RuleError", "builtin_rules_dir", "load_rules"]
