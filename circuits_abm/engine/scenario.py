"""Scenario files: the TOML schema, its defaults, and the messages of its errors.

A scenario says which environments exist (a graph), how much they share and how easy they
are to tell apart, how training phases switch between them, which circuits start, and every
constant of learning, selection and variation.  Everything is validated *before* a run
starts: an unknown field, an out-of-range value or a name that does not exist raises
``ScenarioError``, whose message names the file, the field and what is allowed.  The
checks across fields are in ``circuits_abm.engine.validation``; loading a scenario, which
also checks its geometry, is ``circuits_abm.engine.loading``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
    model_validator,
)

from circuits_abm.defaults import MAX_STEPS
from circuits_abm.engine.rules import REGISTRY
from circuits_abm.engine.validation import cross_reference_problems
from circuits_abm.engine.variation import DEFAULT_OPERATOR_WEIGHTS, OPERATOR_NAMES

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=64)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Overlap = Annotated[float, Field(ge=-1.0, le=1.0)]
MAX_PATHWAYS = 8  # pathways per motivation
PositiveInt = Annotated[int, Field(ge=1)]


class ScenarioError(ValueError):
    """A scenario (or sweep) that cannot run, with a message meant for the person who wrote it.

    Parameters
    ----------
    source
        Where the scenario came from: a file path, a built-in's name, or a description
        such as ``"standard with geometry.sharing"``.
    problems
        One line per problem, each naming the field, the value and what is allowed.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> try:
    ...     ca.override(ca.load_scenario("standard"), {"geometry.sharing": 2})
    ... except ca.ScenarioError as error:
    ...     print(error.problems[0])
    `geometry.sharing`: Input should be less than or equal to 1 (got 2)
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid scenario {source}:\n{lines}")


class Section(BaseModel):
    """Base for every table of a scenario: unknown fields are errors, not silently ignored,
    no number may be infinite or NaN, and types are strict: ``true`` is not a number and
    ``"0.3"`` is not one either (an integer is still a valid float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


# Upper bounds, each with its reason (a value past them is a typo or a resource blow-up):
# The geometry is factorised in O(N^3) and every step is O(N^2) per circuit: a 200-step run
# of 200 environments took 9 s and 0.4 GB, of 500 took 53 s and 1.4 GB (records grow as N).
MAX_ENVIRONMENTS = 200
MAX_RATE = 10.0  # offspring per step: each birth rebuilds the population's arrays
MAX_STRENGTH = 100.0  # at 100 a fitness gap of 0.01 already multiplies a share by e per step
MAX_COST = 10.0  # a mechanism earns at most 1/2 a step, so costs beyond this mean nothing
MAX_SCALE = 10.0  # noise, mutation and learning scales: demands have unit length
BOUND_REASONS = {
    "steps": "a longer run needs ~16 bytes of schedule per step and hours of simulation",
    "phase_length": "no run is longer than this",
    "environments": "the geometry is factorised in O(N^3) and every step costs O(N^2): 500 "
                    "environments took a minute and 1.4 GB for 200 steps",
    "rate": "every offspring rebuilds the population's arrays",
    "strength": "beyond this selection is instantaneous",
    "per_mechanism": "a mechanism earns at most 1/2 a step",
    "per_sharpness": "a mechanism earns at most 1/2 a step",
    "noise": "demands have unit length",
    "mutation_scale": "demands have unit length",
    "sharpness_scale": "a log-normal factor of e^10 is no perturbation",
    "key_learning_rate": "keys are unit vectors",
}


class EnvironmentSpec(Section):
    """One training objective (a node of the environment graph).

    ``motivations`` says how much the objective rewards each declared motivation: positive in
    a hackable RL environment (reward seeking pays), negative in HHH chat or SFT (it is
    penalised), zero in a secure one (it pays nothing and costs a little).  A motivation an
    environment does not name is irrelevant there: it neither pays nor costs."""

    name: Name
    kind: Literal["sft", "rl", "eval", "other"] = "other"
    cluster: Name | None = None
    held_out: bool = False
    motivations: dict[Name, Overlap] = {}


class EdgeSpec(Section):
    """An edge of the environment graph: a transition weight and optional pair overrides."""

    source: Name
    target: Name
    weight: Annotated[float, Field(gt=0.0)] = 1.0
    sharing: Overlap | None = None
    distinguishability: Probability | None = None


class PairValues(Section):
    """Sharing and distinguishability for a group of environment pairs (None = inherit)."""

    sharing: Overlap | None = None
    distinguishability: Probability | None = None


class GeometrySpec(Section):
    """How much environments share (demand overlap) and how easy they are to tell apart.

    Precedence for a pair (e, f), highest first: an edge override, the within-cluster values
    of their common cluster, ``between_clusters`` for two different clusters, then the
    global values.  With ``distance_length`` = L set, the global values decay with the
    number of graph hops h between two environments: sharing ``s * exp(-h / L)`` and cue
    similarity ``(1 - d) * exp(-h / L)`` (positive semi-definite on trees; on other graphs
    an impossible combination is reported).
    """

    sharing: Overlap = 0.5
    distinguishability: Probability = 0.5
    distance_length: Annotated[float, Field(gt=0.0)] | None = None
    clusters: dict[Name, PairValues] = {}
    between_clusters: PairValues = PairValues()


class ScheduleSpec(Section):
    """How training phases follow each other."""

    order: Literal["cycle", "walk", "sequence", "uniform"] = "cycle"
    phase_length: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 10
    phase_length_distribution: Literal["fixed", "geometric"] = "fixed"
    sequence: list[Name] | None = None
    start: Name | None = None
    mixtures: dict[Name, dict[Name, Annotated[float, Field(gt=0.0)]]] = {}


class InterventionSpec(Section):
    """A change at a given step: of sharing and/or distinguishability, or of the update rule.

    ``nodes`` changes every pair that involves a named environment; ``edges`` changes the
    named pairs.  Example: inoculation prompting raises the sharing between a hacked RL
    objective and the assistant's SFT prior; a ``<skills_training>`` tag raises the
    distinguishability of tagged environments.  ``rule`` switches the motivation update
    rule (``plain``, ``block``, ``route``, ``watch``) and ``discard = true`` empties every
    quarantine module (see ``[monitor]``).  ``pays`` sets, from this step on, how much named
    environments reward named motivations (``{ rl_hack_code = { reward_seeking = 0.0 } }``
    fixes a hackable environment: the hack pays nothing there and costs a little).
    """

    step: Annotated[int, Field(ge=0)]
    label: str = ""
    nodes: list[Name] = []
    edges: list[Annotated[tuple[Name, Name], Strict(False)]] = []  # TOML has no tuples
    sharing: Overlap | None = None
    distinguishability: Probability | None = None
    rule: UpdateRule | None = None
    discard: bool = False
    pays: dict[Name, dict[Name, Overlap]] = {}

    @model_validator(mode="after")
    def _says_something(self) -> InterventionSpec:
        geometry = self.sharing is not None or self.distinguishability is not None
        if (self.nodes or self.edges) and not geometry:
            raise ValueError("an intervention on `nodes` or `edges` needs `sharing` or "
                             "`distinguishability`")
        if geometry and not (self.nodes or self.edges):
            raise ValueError("an intervention that sets `sharing` or `distinguishability` "
                             "needs `nodes` or `edges`")
        if not geometry and self.rule is None and not self.discard and not self.pays:
            raise ValueError("an intervention needs a geometry change (`nodes` or `edges` "
                             "with `sharing` or `distinguishability`), a `rule`, `discard` "
                             "or `pays`")
        return self

    @property
    def changes_geometry(self) -> bool:
        """Whether the intervention sets sharing or distinguishability."""
        return self.sharing is not None or self.distinguishability is not None


class MotivationSpec(Section):
    """A named motivation (e.g. ``reward_seeking``): a behaviour a mechanism can express
    through several pathways of demand space, rewarded or penalised per environment.  The
    population's share-weighted, routed behaviour is recorded as its motivation.  ``upkeep``
    is the small cost of holding a pathway (it keeps the unused combinations of the
    pathways from drifting).  ``gains`` has one entry per pathway: how strongly a unit of
    parameter on it expresses the behaviour (``mu = sum_i gain_i theta_i``).  The default,
    two pathways of gain 1, is the two-pathway model; a weak third pathway (gain 0.3, say)
    is one that learning recruits slowly, and that a monitor may not watch
    (``monitor.watched``)."""

    name: Name
    description: str = ""
    upkeep: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    gains: Annotated[list[Annotated[float, Field(gt=0.0, le=4.0)]],
                     Field(min_length=2, max_length=MAX_PATHWAYS)] = [1.0, 1.0]


UpdateRule = Literal["plain", "block", "route", "watch"]


class MonitorSpec(Section):
    """Gradient routing of motivation updates (the selective-learning essay).

    ``rule``: ``plain`` learns as usual; ``watch`` learns as usual while the monitor records
    what it sees (the monitor-only baseline: the update along its direction per phase, and
    for the alarm the strongest expression of that direction in each circuit); ``block``
    projects the part of every update that lies in the monitored direction out; ``route``
    moves that part into a per-circuit quarantine module, which adds to the mechanism's
    parameters while training (reward and selection see it), is inherited, and is discarded
    at ``discard`` (a step, ``end``: just before the final evaluation, or ``never``).

    The monitored direction is the motivation ``direction``'s behaviour, tilted by
    ``angle`` degrees (imperfect interpretability) toward what ``tilt`` names: ``inert``,
    the combination of its first two pathways that changes no behaviour (the monitor then
    misses part of the behaviour and catches nothing else), or ``capability``, the shared
    capability (the unit mean training demand: the monitor then also catches skill, so
    blocking and routing cost capability).  ``watched``: how many of the motivation's
    pathways, counted from the first, the monitor sees (default: all); the behaviour it
    watches is the one expressed through those, and the other pathways can carry the
    behaviour past it.  ``capacity`` caps the norm of each quarantine module under
    ``route``: what a full module cannot take stays in the mechanism's parameters (default:
    no cap).  ``noise``: at the start of every phase the monitor reads its direction afresh
    with an error (``circuits_abm.engine.monitoring.noisy_direction``), of expected norm
    ``noise``, over every demand dimension, so that it also catches some skill and misses
    some behaviour.

    ``alarm`` records the first step at or after ``alarm_from`` (the first steps of a run,
    while a fresh population settles, are noisy) at which the alarm's signal crosses it:
    the population's mean module norm, or under ``watch`` the expression above.
    ``halt_on_alarm`` stops the run there.  ``restart_lag`` closes the recovery loop
    (``circuits_abm.experiments.runs.run`` runs it): at the alarm, halt; fix the
    environments the probe flags (``circuits_abm.engine.monitoring.probe``) by setting their
    payoff for the motivation to 0; and train again from the checkpoint ``restart_lag``
    steps before the alarm."""

    rule: UpdateRule = "plain"
    direction: Name | None = None
    angle: Annotated[float, Field(ge=0.0, le=90.0)] = 0.0
    tilt: Literal["inert", "capability"] = "inert"
    watched: Annotated[int, Field(ge=1, le=MAX_PATHWAYS)] | None = None
    capacity: Annotated[float, Field(gt=0.0)] | None = None
    noise: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    alarm: Annotated[float, Field(gt=0.0)] | None = None
    alarm_from: Annotated[int, Field(ge=0)] = 0
    halt_on_alarm: bool = False
    restart_lag: Annotated[int, Field(ge=0)] | None = None
    discard: Literal["end", "never"] | Annotated[int, Field(ge=1)] = "end"


class RouterRule(Section):
    """Constants of routers: starting and maximum sharpness, key learning rate."""

    initial_sharpness: Annotated[float, Field(ge=0.0, le=500.0)] = 5.0
    max_sharpness: Annotated[float, Field(gt=0.0, le=500.0)] = 50.0
    key_learning_rate: Annotated[float, Field(ge=0.0, le=100.0)] = 0.5

    @model_validator(mode="after")
    def _cap_above_start(self) -> RouterRule:
        if self.max_sharpness < self.initial_sharpness:
            raise ValueError(
                f"max_sharpness ({self.max_sharpness}) is below initial_sharpness "
                f"({self.initial_sharpness}); the cap must allow the sharpness routers start with"
            )
        return self


# One table per learning rule in the registry, plus the routers' constants.
CircuitsSpec = create_model(
    "CircuitsSpec",
    __base__=Section,
    __doc__="The constants of each kind of node: ``[circuits.<rule>]`` and ``[circuits.router]``.",
    router=(RouterRule, RouterRule()),
    **{name: (rule.settings, rule.settings()) for name, rule in REGISTRY.items()},
)


class CostsSpec(Section):
    """Structural costs per step: per mechanism, and per unit of router sharpness."""

    per_mechanism: Annotated[float, Field(ge=0.0, le=MAX_COST)] = 0.01
    per_sharpness: Annotated[float, Field(ge=0.0, le=MAX_COST)] = 0.002


class LearningSpec(Section):
    """The learning terms shared by every rule: gradient noise, and ``gamma`` (updates
    weighted by ``share**gamma``; 0 is off-policy, 1 on-policy)."""

    noise: Annotated[float, Field(ge=0.0, le=MAX_SCALE)] = 0.3
    gamma: Probability = 0.0


class SelectionSpec(Section):
    """Replicator selection strength, and the share below which a circuit goes extinct."""

    strength: Annotated[float, Field(ge=0.0, le=MAX_STRENGTH)] = 5.0
    extinction_floor: Annotated[float, Field(ge=0.0, lt=0.5)] = 1e-4


class VariationSpec(Section):
    """Offspring per step (Poisson rate), their starting share, mutation scales, and the
    relative weight of each variation operator."""

    rate: Annotated[float, Field(ge=0.0, le=MAX_RATE)] = 0.05
    offspring_share: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    mutation_scale: Annotated[float, Field(ge=0.0, le=MAX_SCALE)] = 0.1
    sharpness_scale: Annotated[float, Field(ge=0.0, le=MAX_SCALE)] = 0.3
    operators: dict[Literal[OPERATOR_NAMES], Annotated[float, Field(ge=0.0)]] = (
        DEFAULT_OPERATOR_WEIGHTS
    )


class PopulationSpec(Section):
    """Starting circuits as structure strings: n, w, g, and R[...] for routers (nesting ok).

    ``None`` means the prototype's start: a router with one untrained naive child per
    training environment, beside one naive, one weighted and one generalist mechanism.
    """

    initial: Annotated[list[str], Field(min_length=1)] | None = None


class RecordsSpec(Section):
    """How often the per-lineage time series is recorded: at every phase end, or every N steps."""

    every: Literal["phase"] | PositiveInt = "phase"


class Scenario(Section):
    """A complete, validated scenario: environments, geometry, schedule, circuits and rules.

    Every table is optional except ``name`` and ``environments``; docs/scenarios.md lists
    each field with its default and allowed values.  Unknown fields, infinite or NaN
    numbers and values out of range are errors, and the cross-field checks (the geometry
    can be realised, an intervention names an existing environment, ...) run however the
    scenario is built: from a file, a dict or ``Scenario(...)``.

    ``claim``, ``expected`` and ``expected_before_interventions`` document what a canonical
    scenario illustrates and which regime (canonical structure string) it should produce;
    ``expected_rate`` is the probability over seeds the claim asserts (the catalogue checks
    the lower end of its 95% interval against it).
    They are for people, the catalogue and the tests: neither the simulation nor the
    classifier ever reads them.

    Attributes
    ----------
    name, description, claim, expected, expected_before_interventions, expected_rate
        Identity, and what a canonical scenario claims (documentation only).
    steps, seed
        Length of the run and the seed of its random numbers.
    environments, edges, geometry
        The environments (name, held out or not, motivation rewards), the graph the
        schedule walks, and the sharing and distinguishability between them.
    schedule, interventions
        How training moves between environments, and changes at given steps.
    circuits, costs, learning, selection, variation, population
        The learning rules' settings, structural costs, the learning terms (noise, gamma),
        selection strength and extinction floor, the variation operators, and the
        initial population.
    motivations, monitor
        Motivation directions and the monitor's update rule (plain, block or route).
    records
        How often the per-lineage timeseries is recorded.

    Examples
    --------
    >>> import circuits_abm as ca
    >>> spec = ca.Scenario(name="two_tasks", environments=[{"name": "a"}, {"name": "b"}],
    ...                    geometry={"sharing": 0.2, "distinguishability": 0.9})
    >>> spec.training_names
    ['a', 'b']
    >>> spec.circuits.naive.learning_rate  # a default
    0.3
    """

    name: Name
    description: str = ""
    claim: str = ""
    expected: str | None = None
    expected_before_interventions: str | None = None
    expected_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.7
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 6000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    environments: Annotated[list[EnvironmentSpec],
                            Field(min_length=1, max_length=MAX_ENVIRONMENTS)]
    motivations: list[MotivationSpec] = []
    monitor: MonitorSpec = MonitorSpec()
    edges: list[EdgeSpec] = []
    geometry: GeometrySpec = GeometrySpec()
    schedule: ScheduleSpec = ScheduleSpec()
    interventions: list[InterventionSpec] = []
    circuits: CircuitsSpec = CircuitsSpec()
    costs: CostsSpec = CostsSpec()
    learning: LearningSpec = LearningSpec()
    selection: SelectionSpec = SelectionSpec()
    variation: VariationSpec = VariationSpec()
    population: PopulationSpec = PopulationSpec()
    records: RecordsSpec = RecordsSpec()

    @model_validator(mode="after")
    def _names_refer_to_something(self) -> Scenario:
        """Checks across fields (names that must exist, graphs a walk can use), however the
        scenario is built: from a file, a dict, or by a keyword constructor."""
        problems = cross_reference_problems(self)
        if problems:
            raise ValueError(CROSS_CHECK + "\n".join(problems))
        return self

    @property
    def environment_names(self) -> list[str]:
        """Every environment's name, in the file's order."""
        return [e.name for e in self.environments]

    @property
    def training_names(self) -> list[str]:
        """The environments that are trained (not held out), in the file's order."""
        return [e.name for e in self.environments if not e.held_out]

    @property
    def motivation_names(self) -> list[str]:
        """The declared motivation directions, in the file's order."""
        return [m.name for m in self.motivations]

    @property
    def monitored(self) -> str | None:
        """The motivation the monitor watches (the first declared one unless named)."""
        names = self.motivation_names
        return self.monitor.direction or (names[0] if names else None)

    @property
    def discard_step(self) -> int | None:
        """The step before which quarantine modules are emptied (None: never)."""
        discard = self.monitor.discard
        if discard == "never":
            return None
        return self.steps - 1 if discard == "end" else discard


# --------------------------------------------------------------------------- loading


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; ``ScenarioError`` if it is missing or not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(str(path), ["file not found"])
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), [f"not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise ScenarioError(str(path), ["arrays or tables nest too deeply to read (no "
                                        "scenario field nests more than a few levels)"]
                            ) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), [f"not UTF-8 text (byte {exc.start}): save it as UTF-8"]
                            ) from None
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read: {exc.strerror}"]) from None


def resolve(path: str | Path, kind: str = "scenario") -> Path:
    """A file path as given, or the built-in ``kind`` file of that name (``standard``, or
    ``single`` for an experiment) when no such file exists.  ``ScenarioError`` lists the
    built-ins when neither is there."""
    from circuits_abm import builtin  # noqa: PLC0415 (importlib.resources on demand)

    path = Path(path)
    if path.exists() or path.suffix == ".toml" or len(path.parts) > 1:
        return path  # a path (a name is one word without a suffix)
    found = builtin.find(kind, str(path))
    if found is None:
        raise ScenarioError(str(path), [
            f"no such file, and no built-in {kind} of that name; built-in: "
            + ", ".join(builtin.names(kind))
        ])
    return Path(str(found))


CROSS_CHECK = "cross-field problems:\n"


def describe_errors(exc: ValidationError, root: type[BaseModel] | None = None) -> list[str]:
    """Every problem of a validation error, one line each (see
    ``describe_validation_error``); the cross-field checks come as their own lines."""
    problems: list[str] = []
    for err in exc.errors():
        message = str(err.get("msg", ""))
        if CROSS_CHECK in message:
            problems.extend(message.split(CROSS_CHECK, 1)[1].splitlines())
        else:
            problems.append(describe_validation_error(err, root))
    return problems


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``path = "a.b.c"`` (integers index lists)."""
    parts = path.split(".")
    node: Any = data
    for depth, (part, following) in enumerate(zip(parts, parts[1:], strict=False)):
        if isinstance(node, list):
            node = node[_list_index(node, part, path, depth)]
        else:
            node = node.setdefault(part, [] if following.isdigit() else {})
    if isinstance(node, list):
        node[_list_index(node, parts[-1], path, len(parts) - 1)] = value
    else:
        node[parts[-1]] = value


def _list_index(items: list[Any], part: str, path: str, depth: int) -> int:
    """``part`` as an index into ``items``, or a ScenarioError saying what fits there."""
    where = ".".join(path.split(".")[:depth]) or path
    if not part.isdigit():
        raise ScenarioError(
            path,
            [f"`{path}`: `{where}` is a list, so the next part must be an index "
             f"0..{len(items) - 1}, not `{part}`"],
        )
    if int(part) >= len(items):
        raise ScenarioError(
            path, [f"`{path}`: index {part} is past the end ({len(items)} items)"]
        )
    return int(part)


def scenario_toml(spec: Scenario, header: str = "") -> str:
    """``spec`` as the text of a scenario file, every field written out (so the file means
    the same to a later version whose defaults differ), after ``header`` as comment lines.
    ``load_scenario`` reads it back to an equal scenario."""
    import tomli_w  # noqa: PLC0415

    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comments + tomli_w.dumps(spec.model_dump(mode="json", exclude_none=True))


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"geometry.sharing=0.6"`` as ``("geometry.sharing", 0.6)``: the value is read as a
    TOML value (number, boolean, quoted string, array), or else taken as a bare string."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ScenarioError("--set", [f"expected PATH=VALUE, such as geometry.sharing=0.6 "
                                      f"(got {text!r})"])
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path.strip(), value


def assignment_text(path: str, value: Any) -> str:
    """The ``PATH=VALUE`` that ``parse_assignment`` reads back as ``(path, value)``."""
    import tomli_w  # noqa: PLC0415

    return f"{path}={tomli_w.dumps({'value': value}).strip().removeprefix('value = ')}"


def describe_validation_error(err: dict[str, Any], root: type[BaseModel] | None = None) -> str:
    """One line per pydantic error: the dotted field, what is wrong, and what is allowed
    (``root`` is the schema validated, the scenario by default)."""
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        allowed = _allowed_fields(err["loc"][:-1], root or Scenario)
        hint = f"; allowed fields here: {', '.join(allowed)}" if allowed else ""
        return f"`{loc}`: unknown field{hint}"
    if err["type"] == "missing":
        return f"`{loc}`: required field is missing"
    if not loc:  # a check across fields of the whole table
        return str(err["msg"]).removeprefix("Value error, ")
    reason = ""
    leaf = next((str(p) for p in reversed(err["loc"]) if not isinstance(p, int)), "")
    if err["type"] in ("less_than_equal", "less_than", "too_long") and leaf in BOUND_REASONS:
        reason = f": {BOUND_REASONS[leaf]}"
    return f"`{loc}`: {err['msg']}{reason} (got {_short(err.get('input'))})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_fields(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    """The field names of the schema table at ``loc`` (list indices and dict keys skipped)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            continue
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
                    break
    return sorted(getattr(model, "model_fields", {}))


