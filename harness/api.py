"""The method interface: what every measured method exposes to the harness.

After MLPerf LoadGen's system-under-test split, a :class:`Method` knows its
network and its decisions, never how it is timed or scored.  The harness only
talks to a method through this module:

* :class:`MethodCard` — static metadata (paper, DOI, input kind, frames,
  resolutions, knobs with ranges and sweeps, the ids of its published claims),
  readable without building the network.
* :meth:`Method.forward` — ``x`` of shape ``(B, T, 3, H, W)`` (pixel methods,
  ImageNet-normalised) or ``(B, T, D)`` (feature methods) to an :class:`Output`
  holding logits ``(B, num_classes)`` and, per sample, the ordered list of
  :class:`TraceStep` actually executed.
* :meth:`Method.cost_entries` — every ``(module, input shape)`` the method can
  execute; :meth:`Method.cost_table` counts each once, offline, in GMACs.
* :meth:`Method.training_loss` — the paper's loss for one batch.

Costs are per *sample*: a trace step's ``input_shape`` excludes the batch
dimension, so per-sample GMACs are the plain sum of ``cost_table()[step.key]``
over the sample's trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from evbench.harness.errors import UserError
from torch import nn

__all__ = [
    "CostEntry",
    "KnobSpec",
    "MethodCard",
    "Method",
    "Output",
    "TraceStep",
    "KnobError",
    "resolve_knobs",
]

Shape = tuple[int, ...]


class KnobError(UserError, ValueError):
    """An inference knob that the method does not declare, or a bad value for one."""


@dataclass(frozen=True)
class TraceStep:
    """One step a sample actually executed.

    Attributes:
        frame: Index of the frame in the clip as given to ``forward`` (0-based),
            or -1 for clip-level steps (e.g. a head run once per video).
        module: Name of the costed module; a key of :meth:`Method.cost_table`
            together with ``input_shape``.
        input_shape: Shape of this module's input for one sample (no batch dim),
            e.g. ``(3, 224, 224)`` for a backbone, ``(1280,)`` for an LSTM cell.
        exit: Name of the exit point if inference for this sample stopped after
            this step (e.g. ``"confidence"``, ``"gate"``, ``"last_frame"``),
            else ``None``.
        role: ``"backbone"``, ``"policy"``, ``"head"`` or ``"input"`` — used to
            split cost into policy vs backbone in reports.
    """

    frame: int
    module: str
    input_shape: Shape
    exit: str | None = None
    role: str = "backbone"

    @property
    def key(self) -> tuple[str, Shape]:
        """The ``(module, input_shape)`` key into the cost table."""
        return (self.module, tuple(self.input_shape))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (shape as a list)."""
        return {
            "frame": self.frame,
            "module": self.module,
            "input_shape": list(self.input_shape),
            "exit": self.exit,
            "role": self.role,
        }


@dataclass
class Output:
    """What :meth:`Method.forward` returns.

    Attributes:
        logits: ``(B, num_classes)`` video-level logits.
        trace: ``B`` lists of :class:`TraceStep`, in execution order.
        decisions: Optional per-sample decision records (e.g. chosen resolution
            per frame, exit frame) that reports turn into histograms; each a
            JSON-serialisable dict.
    """

    logits: torch.Tensor
    trace: list[list[TraceStep]]
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.logits.dim() != 2:
            raise ValueError(f"Output.logits must be (B, C), got shape {tuple(self.logits.shape)}")
        if len(self.trace) != self.logits.shape[0]:
            raise ValueError(
                f"Output.trace has {len(self.trace)} samples but logits has batch {self.logits.shape[0]}"
            )


@dataclass(frozen=True)
class KnobSpec:
    """An inference-time operating point parameter.

    Attributes:
        name: Key in the ``knobs`` dict passed to ``forward``.
        default: Value used when the knob is absent.
        description: What it changes, with units.
        sweep: Values a Pareto sweep visits by default (may be empty).
        low: Smallest accepted value (inclusive), or None when unbounded below
            (numeric knobs only).
        high: Largest accepted value (inclusive), or None when unbounded above.
        choices: The accepted values of a categorical knob (e.g. a route name);
            empty for numeric knobs.
    """

    name: str
    default: Any
    description: str
    sweep: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def in_range(self, value: Any) -> bool:
        """Whether ``value`` lies in the declared range (or among ``choices``).

        Args:
            value: A candidate knob value (numbers compare numerically; NaN is
                never in range).

        Returns:
            True when ``value`` is one of ``choices`` (categorical knobs) or a
            finite-or-infinite number within ``[low, high]`` (numeric knobs).
        """
        if self.choices:
            return any(value == c or str(value) == str(c) for c in self.choices)
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        if v != v:  # NaN
            return False
        return (self.low is None or v >= self.low) and (self.high is None or v <= self.high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (tuples as lists)."""
        return {"name": self.name, "default": self.default, "description": self.description,
                "sweep": list(self.sweep), "low": self.low, "high": self.high, "choices": list(self.choices)}


@dataclass(frozen=True)
class CostEntry:
    """A module the method may execute, at one input shape.

    Either the harness counts it (``module`` names a submodule of the method, and
    ``make_inputs`` builds a batch-1 example input tuple), or its cost is
    declared (``declared_gmacs`` with ``source``) because it runs outside the
    method — e.g. the CNN that produced pre-extracted per-frame features.

    Attributes:
        module: Dotted submodule path (``get_submodule``) or a declared name.
        input_shape: Per-sample input shape (no batch dim).
        role: ``"backbone"``, ``"policy"``, ``"head"`` or ``"input"``.
        make_inputs: Returns the positional inputs for a batch-1 call; default
            is ``(torch.zeros(1, *input_shape),)``.
        declared_gmacs: Cost taken from a source rather than counted.
        source: Where ``declared_gmacs`` comes from.
    """

    module: str
    input_shape: Shape
    role: str = "backbone"
    make_inputs: Callable[[], tuple[Any, ...]] | None = None
    declared_gmacs: float | None = None
    source: str = ""

    @property
    def key(self) -> tuple[str, Shape]:
        """The ``(module, input_shape)`` key into the cost table."""
        return (self.module, tuple(self.input_shape))

    def example_inputs(self) -> tuple[Any, ...]:
        """Batch-1 inputs for counting; raises ValueError for declared entries."""
        if self.declared_gmacs is not None:
            raise ValueError(f"cost entry {self.module} is declared, not counted")
        if self.make_inputs is not None:
            return self.make_inputs()
        return (torch.zeros(1, *self.input_shape),)


@dataclass(frozen=True)
class MethodCard:
    """Static metadata of a method (torchvision-style ``meta``).

    Attributes:
        name: Registry name.
        title: Human-readable name.
        paper: Citation (authors, title, venue, year).
        doi: DOI or arXiv id; ``""`` for baselines without one.
        code: Official repository, if any.
        input_kind: ``"pixels"`` (x is ``(B, T, 3, H, W)``) or ``"features"``
            (x is ``(B, T, D)``).
        frames: T the method consumes (for feature methods: the clip length it
            was built for; it may use fewer).
        resolution: Side of the square input crop fed to ``forward`` in px
            (0 for feature methods); lower resolutions are derived inside.
        resolutions: All resolutions the method may run a backbone at.
        feature_dim: D for feature methods, else 0.
        knobs: Inference knobs.
        force_options: Values accepted by ``knobs={"force": v}``; each also
            names an input-shape path the harness warms up before timing.
        stages: Training stages in the order the paper runs them.
        upper_bound_knobs: Knobs under which every step that can run does run
            (no skip, no exit, most expensive branch) — the harness derives the
            static upper bound of GMACs/video from a forward with these.
        config: The configuration name this instance was built from.
        claims: Ids of the published claims this configuration makes, in the
            claims registry (:file:`harness/claims.toml`, the only copy of
            every published number; read them with
            :func:`evbench.harness.claims.claims_by_id`).  Filled by the
            method registry for a configuration built without overrides.
        notes: Departures from the paper/official code and other remarks.
        action_space: The kind of decision space the method's policy acts in —
            data the oracle bound (:data:`evbench.harness.oracle.ACTION_SPACES`)
            and the report read instead of method names: ``"uniform-frames"``
            (a static baseline: k evenly spaced frames), ``"forced-exits"``
            (early exit over the card's ``force_options`` schedules: FrameExit,
            TLEE), ``"grid-routes"`` (frames x depth checkpoints), ``"resolution-exit"``
            (a resolution per frame then an exit: RSEE), ``"coarse-fine"`` (a
            coarse path always, a fine network per frame or not: LiteEval),
            ``"skip-policy"`` (per-frame branch or skip: AR-Net); ``""`` none.

    A card is data: :func:`evbench.harness.registry.method_card` returns it
    without building the network, and the built method's ``card`` is that
    same object.
    """

    name: str
    title: str
    paper: str
    doi: str
    code: str
    input_kind: str
    frames: int
    resolution: int
    resolutions: tuple[int, ...] = ()
    feature_dim: int = 0
    knobs: tuple[KnobSpec, ...] = ()
    force_options: tuple[Any, ...] = ()
    stages: tuple[str, ...] = ("joint",)
    upper_bound_knobs: Mapping[str, Any] = field(default_factory=dict)
    config: str = "paper"
    claims: tuple[str, ...] = ()
    notes: str = ""
    action_space: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        d = dataclasses.asdict(self)
        d["knobs"] = [k.to_dict() for k in self.knobs]
        d["upper_bound_knobs"] = dict(self.upper_bound_knobs)
        for key in ("resolutions", "force_options", "stages", "claims"):
            d[key] = list(d[key])
        return d

    def knob(self, name: str) -> KnobSpec:
        """The knob called ``name``.

        Raises:
            KnobError: If the card declares no such knob.
        """
        for k in self.knobs:
            if k.name == name:
                return k
        raise KnobError(f"method {self.name!r} has no knob {name!r}; knobs: {[k.name for k in self.knobs]}")


class Method(nn.Module):
    """Base class of every measured method.

    Subclasses set ``self.card`` (a :class:`MethodCard`) in ``__init__`` and
    implement :meth:`forward`, :meth:`cost_entries` and :meth:`training_loss`.
    A method never times itself; the harness does.
    """

    card: MethodCard
    num_classes: int

    # -- inference -----------------------------------------------------------
    def forward(self, x: torch.Tensor, *, knobs: Mapping[str, Any] | None = None) -> Output:  # noqa: D401
        """Run inference.

        Args:
            x: ``(B, T, 3, H, W)`` normalised frames or ``(B, T, D)`` features.
            knobs: Inference knobs (see ``card.knobs``); ``{"force": v}`` runs
                the forced schedule ``v`` (one of ``card.force_options``).

        Returns:
            :class:`Output` with ``(B, num_classes)`` logits and per-sample traces.

        Raises:
            KnobError: For a knob the card does not declare.
        """
        raise NotImplementedError

    def resolve_knobs(self, knobs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Merge ``knobs`` over the card's defaults.

        Values are converted to the type of the knob's default (``"0.8"`` ->
        ``0.8``; an integer knob takes only integral values) and checked
        against the card's :class:`KnobSpec` range (``low``/``high``) or
        ``choices``; nothing is clamped.

        Raises:
            KnobError: If a knob is not declared by ``card.knobs`` (``force`` is
                accepted only when ``card.force_options`` is non-empty), a
                forced value is not among ``card.force_options``, or a value
                is not of the knob's type (``frames=abc``), is NaN, or lies
                outside its range / choices (``frames=-3``).
        """
        return resolve_knobs(self.card, knobs)

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A zero input of the shape ``forward`` expects, on the method's device."""
        device = next(self.parameters()).device
        if self.card.input_kind == "features":
            return torch.zeros(batch, self.card.frames, self.card.feature_dim, device=device)
        r = self.card.resolution
        return torch.zeros(batch, self.card.frames, 3, r, r, device=device)

    # -- cost ------------------------------------------------------------------
    def cost_entries(self) -> Sequence[CostEntry]:
        """Every ``(module, input shape)`` this method can execute.

        Returns:
            Cost entries; counted ones name a submodule reachable with
            ``self.get_submodule``.
        """
        raise NotImplementedError

    def cost_table(self) -> dict[tuple[str, Shape], float]:
        """GMACs per ``(module, input_shape)``, counted once with fvcore.

        See :func:`evbench.harness.costs.cost_table` for the counting convention.
        """
        from evbench.harness.costs import cost_table  # local: costs imports this module

        return cost_table(self)

    # -- training --------------------------------------------------------------
    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, *, stage: str, epoch: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The paper's training loss for one batch.

        Args:
            x: As for :meth:`forward`.
            y: ``(B,)`` int64 class indices.
            stage: One of ``card.stages``.
            epoch: 0-based epoch within the stage (temperature schedules).

        Returns:
            ``(loss, logs)`` — a scalar tensor and floats to log.
        """
        raise NotImplementedError

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """Parameters optimised in ``stage`` (default: all that require grad)."""
        return [p for p in self.parameters() if p.requires_grad]

    def stage_epochs(self, stage: str, epochs: int) -> int:
        """Epochs to spend in ``stage`` given the total budget ``epochs``.

        Default: the budget split evenly over ``card.stages`` (at least 1 each).
        """
        return max(1, epochs // max(1, len(self.card.stages)))


def resolve_knobs(card: MethodCard, knobs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``knobs`` merged over ``card``'s defaults, each value typed and checked — no network needed.

    What :meth:`Method.resolve_knobs` does, from the card alone (so a suite's
    knobs can be checked before any cell builds its method).

    Args:
        card: The method's card (:func:`evbench.harness.registry.method_card`).
        knobs: Knob name -> value (``"force"`` for a forced schedule).

    Returns:
        Every declared knob with its value, plus ``"force"`` (None unless given).

    Raises:
        KnobError: See :meth:`Method.resolve_knobs`.
    """
    specs = {k.name: k for k in card.knobs}
    out = {k.name: k.default for k in card.knobs}
    for key, value in (knobs or {}).items():
        if key == "force":
            if not card.force_options:
                raise KnobError(f"method {card.name!r} has no forced-decision mode")
            if value is not None and _coerce(value, card.force_options) is None:
                raise KnobError(f"method {card.name!r}: force={value!r} not in {list(card.force_options)}")
            out["force"] = None if value is None else _coerce(value, card.force_options)
            continue
        if key not in out:
            raise KnobError(
                f"method {card.name!r} has no knob {key!r}; knobs: {sorted(out) + (['force'] if card.force_options else [])}"
            )
        out[key] = _knob_value(card.name, specs[key], value)
    out.setdefault("force", None)
    return out


def _range_text(spec: KnobSpec) -> str:
    if spec.low is not None and spec.high is not None:
        return f"in [{spec.low:g}, {spec.high:g}]"
    if spec.low is not None:
        return f">= {spec.low:g}"
    return f"<= {spec.high:g}"


def _knob_value(method: str, spec: KnobSpec, value: Any) -> Any:
    """``value`` converted to the type of ``spec.default`` and checked against its range or choices.

    Raises:
        KnobError: Wrong type, NaN, non-integral for an integer knob, or
            outside ``[low, high]`` / not among ``choices`` (the message names
            the method, the knob and what it accepts).
    """
    where = f"method {method!r}: knob {spec.name}={value!r}"
    if spec.choices:
        opt = _coerce(value, spec.choices)
        if opt is None:
            raise KnobError(f"{where}: choose one of {list(spec.choices)}")
        return opt
    default = spec.default
    if default is None:
        return value
    if isinstance(default, bool):
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else text in ("true", "1")
        raise KnobError(f"{where}: expected true or false")
    if isinstance(default, (int, float)):
        kind = "an integer" if isinstance(default, int) else "a number"
        if isinstance(value, bool):
            raise KnobError(f"{where}: expected {kind}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise KnobError(f"{where}: expected {kind}") from None
        if number != number:
            raise KnobError(f"{where}: NaN is not a valid value; expected {kind}"
                            + (f" {_range_text(spec)}" if spec.low is not None or spec.high is not None else ""))
        if isinstance(default, int):
            if not (number.is_integer()):
                raise KnobError(f"{where}: expected an integer")
            number = int(number)
        if not spec.in_range(number):
            raise KnobError(f"{where}: out of range, must be {_range_text(spec)}")
        return number
    if isinstance(default, str):
        return str(value)
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise KnobError(f"{where}: expected a {type(default).__name__}") from None


def _coerce(value: Any, options: Sequence[Any]) -> Any:
    """Return the option equal to ``value`` (comparing as strings too), else None."""
    for opt in options:
        if value == opt or str(value) == str(opt):
            return opt
    return None
