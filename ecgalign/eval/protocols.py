"""The evaluation-protocol registry (DESIGN.md convention 8). A protocol is a plain function of a ``Context``
(the model, its random-init twin, the embedded dataset, the split, the settings) registered with what it needs
of a model, the command-line options it reads, and how its results read in the HTML report. ``evaluate``, the
``ecgalign eval`` commands and ``report.html`` are all generated from this registry, so a new protocol is one
module with one ``@register_protocol``.

A protocol that does not apply (no joint space, no patients with two records, ...) raises
``NotApplicableError`` and its section reads "skipped: <why>"; any other error is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecgalign.data.errors import NotApplicableError
from ecgalign.data.registry import Registry
from ecgalign.data.splits import Split
from ecgalign.eval.data import EvalData

Figures = list[tuple[str, str, bytes]]  # (section, caption, png)

# what a protocol may need of a model -> how to tell whether an ``Embedder`` has it
CAPABILITIES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "joint_space": (lambda m: bool(m.has_joint_space), "the model has no joint ECG-text space (no text objective)"),
    "reconstruction": (lambda m: bool(m.can_reconstruct),
                       "the model recovers no signal from printouts (a signal model, or an image model trained "
                       "without the signal decoder)"),
}


@dataclass
class Context:
    """What a protocol sees: ``encoders`` maps role ("model", "random_init") to an ``Embedder``, ``embedded`` the
    same roles to the dataset with that encoder's embeddings; ``sets`` the label sets evaluated."""

    model: Any
    encoders: dict[str, Any]
    embedded: dict[str, EvalData]
    sets: list[str]
    split: Split
    split_rule: str
    config: Any  # ecgalign.eval.run.EvalConfig
    figures: Figures = field(default_factory=list)

    @property
    def data(self) -> EvalData:
        return self.embedded["model"]


@dataclass(frozen=True)
class Protocol:
    name: str  # the command: ``ecgalign eval NAME``
    key: str  # its section of results.json
    title: str  # its heading in report.html
    summary: str  # one line of help
    run: Callable[[Context], dict[str, Any]] | None  # None: a protocol with its own command (``eval shift``)
    section: Callable[[dict[str, Any], dict[str, list[tuple[str, bytes]]]], str]  # results block -> HTML
    needs: tuple[str, ...] = ()  # keys of CAPABILITIES
    options: tuple[str, ...] = ()  # command-line options it reads beyond the common ones
    in_all: bool = True  # part of ``ecgalign eval all``

    def unmet_need(self, model) -> str | None:
        """Why ``model`` cannot run this protocol (None: it can)."""
        for need in self.needs:
            has, why = CAPABILITIES[need]
            if not has(model):
                return why
        return None


PROTOCOLS: Registry[Protocol] = Registry("evaluation protocol")


def register_protocol(name: str, *, key: str, title: str, summary: str,
                      section: Callable[[dict[str, Any], dict[str, list[tuple[str, bytes]]]], str],
                      needs: tuple[str, ...] = (), options: tuple[str, ...] = (), in_all: bool = True):
    """Decorator on ``run(ctx) -> dict``: register it as protocol ``name``."""
    for need in needs:
        if need not in CAPABILITIES:
            raise ValueError(f"protocol {name!r}: unknown need {need!r} (known: {sorted(CAPABILITIES)})")

    def decorator(run: Callable[[Context], dict[str, Any]]) -> Callable[[Context], dict[str, Any]]:
        protocol = Protocol(name, key, title, summary, run, section, tuple(needs), tuple(options), in_all)
        PROTOCOLS.register(name)(lambda: protocol)
        return run

    return decorator


def get_protocol(name: str) -> Protocol:
    return PROTOCOLS.create(name)


def list_protocols() -> list[str]:
    """Registered protocols in registration order (the order of results and report sections)."""
    return PROTOCOLS.in_order()


def per_encoder(ctx: Context, fn: Callable[[str, EvalData], dict[str, Any]]) -> dict[str, Any]:
    """``fn(role, data)`` for each encoder; a role it does not apply to reads ``{"skipped": why}``."""
    out: dict[str, Any] = {}
    for role, d in ctx.embedded.items():
        try:
            out[role] = fn(role, d)
        except NotApplicableError as exc:
            out[role] = {"skipped": str(exc)}
    return out
