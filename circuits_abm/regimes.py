"""The regimes: one registry of their names, short forms and colours, and the one parser of
the structure strings the classifier writes.

A classification is written as a line such as
``conditional_policy[ecological_generalist{a,b}, specialist{c}]``: a conditional policy
lists its parts in brackets, any other regime the environments it serves in braces.
Everything that reads such a line (figures, the explorer, sweeps, the theory's labels)
parses it here, into a ``Label`` tree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Regime:
    """A regime: its name in labels, its short form in crowded figures, its colour
    (Okabe-Ito, colour-blind safe) and its place in a phase diagram's stripes."""

    name: str
    short: str
    colour: str
    stripe: int


CONDITIONAL = "conditional_policy"
GENERALIST = "ecological_generalist"
CHURN = "strategy_churn"
SPECIALIST = "specialist"
UNDETERMINED = "undetermined"

# In the order of the results tables' columns (share_<regime>, ...).
REGISTRY = (
    Regime(GENERALIST, "G", "#009E73", 1),
    Regime(CONDITIONAL, "CP", "#0072B2", 0),
    Regime(CHURN, "C", "#D55E00", 2),
    Regime(SPECIALIST, "S", "#F0E442", 3),
    Regime(UNDETERMINED, "?", "#999999", 4),
)
REGIMES = tuple(r.name for r in REGISTRY)
BY_NAME = {r.name: r for r in REGISTRY}
COLOURS = {r.name: r.colour for r in REGISTRY}
STRIPE_ORDER = tuple(r.name for r in sorted(REGISTRY, key=lambda r: r.stripe))


@dataclass(frozen=True)
class Label:
    """A parsed structure line: a regime, the environments it serves (for a part that is
    not a conditional policy) and its parts (for one that is)."""

    regime: str
    environments: tuple[str, ...] = ()
    parts: tuple[Label, ...] = ()

    def text(self, listed: int | None = None) -> str:
        """The line this label was parsed from (``parse(label.text()) == label``); with
        ``listed``, an environment list longer than that is written as its count
        (``specialist{3 envs}``)."""
        if self.regime == CONDITIONAL:
            return f"{self.regime}[{', '.join(part.text(listed) for part in self.parts)}]"
        n = len(self.environments)
        if listed is not None and n > listed:
            return f"{self.regime}{{{n} env{'s' if n > 1 else ''}}}"
        return f"{self.regime}{{{','.join(self.environments)}}}"


    def canonical(self) -> str:
        """The line with every environment list sorted, the parts of a conditional policy
        sorted, and a conditional policy directly inside another merged into it: equal for
        lines that describe the same routing (``Node.canonical`` of the classifier writes
        the same form)."""
        if self.regime != CONDITIONAL:
            return f"{self.regime}{{{','.join(sorted(self.environments))}}}"
        return f"{self.regime}[{', '.join(sorted(self._merged_parts()))}]"

    def _merged_parts(self) -> list[str]:
        out = []
        for part in self.parts:
            out.extend(part._merged_parts() if part.regime == CONDITIONAL else [part.canonical()])
        return out

    def environment_names(self) -> set[str]:
        """Every environment named anywhere in the line."""
        return set(self.environments).union(*(p.environment_names() for p in self.parts))


def canonical(structure: str) -> str:
    """``parse(structure).canonical()``: the form the classifier's ``canonical`` writes."""
    return parse(structure).canonical()


def parse(structure: str) -> Label:
    """The ``Label`` tree of a structure line; ``ValueError`` naming the position of
    anything else."""
    label, end = _parse_at(structure, 0)
    if end != len(structure):
        raise ValueError(f"structure {structure!r}: unexpected text at {end}")
    return label


def _parse_at(text: str, start: int) -> tuple[Label, int]:
    stack: list[tuple[str, list[Label]]] = []  # open conditional policies
    position = start
    while True:
        name_end = position
        while name_end < len(text) and text[name_end] not in "[{":
            name_end += 1
        regime = text[position:name_end].strip()
        if regime not in BY_NAME or name_end == len(text):
            raise ValueError(f"structure {text!r}: expected a regime and [ or {{ at {position}")
        if text[name_end] == "[":
            stack.append((regime, []))
            position = name_end + 1
            continue
        close = text.find("}", name_end)
        if close < 0:
            raise ValueError(f"structure {text!r}: unclosed {{ at {name_end}")
        envs = tuple(e.strip() for e in text[name_end + 1 : close].split(",") if e.strip())
        label, position = Label(regime, envs), close + 1
        while stack:  # the part just read belongs to the innermost open policy
            regime_open, parts = stack[-1]
            parts.append(label)
            if position < len(text) and text[position] == ",":
                position = _skip_spaces(text, position + 1)
                break
            if position < len(text) and text[position] == "]":
                stack.pop()
                label, position = Label(regime_open, (), tuple(parts)), position + 1
                continue
            raise ValueError(f"structure {text!r}: expected , or ] at {position}")
        else:
            return label, position


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    return position


def nested_label(structure: str) -> str:
    """Short name of a nested structure (``CP[C,C]``), or "" when it is not nested.

    A conditional policy whose parts are all specialists is the plain taxonomy cell; any
    other part (a generalist or churning cluster) makes it a nested mixture worth naming.
    """
    if not structure.startswith(CONDITIONAL + "["):
        return ""
    label = parse(structure)
    if not {GENERALIST, CHURN} & _regimes_in(label):
        return ""
    return "CP[" + ",".join(sorted(BY_NAME[part.regime].short for part in label.parts)) + "]"


def _regimes_in(label: Label) -> set[str]:
    found, todo = set(), [label]
    while todo:
        node = todo.pop()
        found.add(node.regime)
        todo.extend(node.parts)
    return found


def compact(structure: str, length: int) -> str:
    """``structure`` as is if it fits in ``length`` characters; otherwise every environment
    list becomes its count (``specialist{3 envs}``) and identical neighbouring parts are
    merged (``8× specialist{1 env}``), cut at ``length``."""
    if len(structure) <= length:
        return structure
    label = parse(structure)
    text = label.text(listed=0)
    if label.parts:
        merged: list[list] = []  # [part, times]
        for part in (p.text(listed=0) for p in label.parts):
            if merged and merged[-1][0] == part:
                merged[-1][1] += 1
            else:
                merged.append([part, 1])
        text = label.regime + "[" + ", ".join(
            part if times == 1 else f"{times}× {part}" for part, times in merged) + "]"
    return text if len(text) <= length else text[: length - 1] + "…"
