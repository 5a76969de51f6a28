"""Two ways to run a fuzz target many times, and the tally of what its decoder did.

``run_hypothesis``: hypothesis draws every input from the target's strategy (its generate
phase only, no database), as the unit tests do.

``run_mutations``: a seeded, in-process mutation fuzzer, tens of times faster. Its seeds are
drawn from the same strategies by hypothesis; each input is a seed, or an input that gave
some outcome earlier, mutated one to four times by ``fakes/fuzz_mutate.py``. It is not
coverage-guided (Python 3.11 has no cheap coverage hook): the feedback is the outcome, the
answer's type or the first words of the refusal's message (which check refused), and inputs
of each outcome join the pool that later inputs start from, those that were answered most
(they got furthest into the decoder). The same ``--seed`` gives the same inputs.
"""

import random
import re
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from fakes.fuzz_mutate import Mutator
from fakes.fuzz_targets import Target
from hypothesis import HealthCheck, Phase, given, settings

MAX_SAMPLES = 10  # the first input of each kind of failure, for the report
POOL_PER_OUTCOME = 8
MAX_OUTCOMES = 2_000  # kinds of outcome kept in the pool: memory stays bounded
_WORD = re.compile(r"[A-Za-z_]+")  # a refusal's first words say which check refused
_PATHS = re.compile(r"(?<![\w.])/[^\s:]+")  # a file's path in a message says nothing


@dataclass(slots=True)
class Outcome:
    """What one target's decoder did with the inputs run so far."""

    name: str
    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def run(self, target: Target, value: Any) -> str:
        """Decode ``value``; count the answer, the refusal or the failure; return its kind."""
        self.inputs += 1
        try:
            result = target.call(value)
        except target.refusals as exc:
            self.refused += 1
            return f"{type(exc).__name__}:{_first_words(str(exc))}"
        except Exception as exc:
            where = _where(exc)
            self.failures[where] += 1
            if self.failures[where] == 1 and len(self.samples) < MAX_SAMPLES:
                self.samples.append({"input": repr(value)[:400], "error": where})
            return "failure"
        self.accepted += 1
        kind = result if isinstance(result, str) else getattr(result, "kind", None)
        return f"ok:{kind or type(result).__name__}"

    def as_json(self) -> dict[str, Any]:
        """Return the tally as plain values."""
        return {
            "decoder": self.name,
            "inputs": self.inputs,
            "accepted": self.accepted,
            "refused": self.refused,
            "other_exceptions": sum(self.failures.values()),
            "by_type": dict(self.failures),
            "samples": self.samples,
            "seconds": round(self.seconds, 2),
            "inputs_per_s": round(self.inputs / self.seconds) if self.seconds else None,
        }


def _first_words(message: str) -> str:
    """Return the first four words of a refusal (paths left out): which check refused."""
    return " ".join(_WORD.findall(_PATHS.sub("", message[:200]))[:4])


def _where(exc: Exception) -> str:
    """Return the exception's type and the project line it came through last."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/paper_trader/" in f.filename] or frames
    frame = ours[-1]
    path = frame.filename.rpartition("/paper_trader/")[2] or frame.filename
    return f"{type(exc).__name__} at {path}:{frame.lineno} ({frame.name})"


def _generate_only(count: int, seed: int) -> Any:
    return lambda test: hypothesis.seed(seed)(
        settings(
            max_examples=count,
            database=None,
            phases=[Phase.generate],
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )(test)
    )


def run_hypothesis(target: Target, count: int, seed: int, outcome: Outcome) -> None:
    """Run ``count`` inputs drawn by hypothesis from the target's strategy."""

    @_generate_only(count, seed)
    @given(target.strategy)
    def one(value: Any) -> None:
        outcome.run(target, value)

    started = time.perf_counter()
    one()
    outcome.seconds += time.perf_counter() - started


def draw_seeds(target: Target, count: int, seed: int) -> list[Any]:
    """Return ``count`` inputs drawn by hypothesis from the target's strategy."""
    seeds: list[Any] = []

    @_generate_only(count, seed)
    @given(target.strategy)
    def collect(value: Any) -> None:
        seeds.append(value)

    collect()
    return seeds


def run_mutations(
    target: Target, seeds: Sequence[Any], count: int, rng: random.Random, outcome: Outcome
) -> None:
    """Run the seeds, then mutants of them and of inputs with new outcomes, ``count`` in all."""
    if not seeds:
        raise ValueError(f"{target.name}: no seeds to mutate")
    mutator, pool = Mutator(rng, seeds), Pool(rng, seeds)
    started = time.perf_counter()
    for value in seeds[:count]:
        pool.add(outcome.run(target, value), value)
    for _ in range(count - min(count, len(seeds))):
        value = pool.pick()
        for _ in range(1 + (rng.random() < 0.4) + (rng.random() < 0.2) + (rng.random() < 0.1)):
            value = mutator.mutate(value, target.kind)
        pool.add(outcome.run(target, value), value)
    outcome.seconds += time.perf_counter() - started


class Pool:
    """The inputs mutants start from: the seeds, and up to ``POOL_PER_OUTCOME`` inputs of
    each kind of outcome seen (answers kept apart: they got furthest into the decoder)."""

    def __init__(self, rng: random.Random, seeds: Sequence[Any]) -> None:
        self._rng = rng
        self._seeds = seeds
        self._by_kind: dict[str, list[Any]] = {}
        self._kinds: list[str] = []
        self._answers: list[str] = []

    def add(self, kind: str, value: Any) -> None:
        """Keep ``value`` for its kind of outcome (in place of an older one when full)."""
        kept = self._by_kind.get(kind)
        if kept is None:
            if len(self._kinds) >= MAX_OUTCOMES:
                return
            kept = self._by_kind[kind] = []
            self._kinds.append(kind)
            if kind.startswith("ok:"):
                self._answers.append(kind)
        if len(kept) < POOL_PER_OUTCOME:
            kept.append(value)
        else:
            kept[self._rng.randrange(POOL_PER_OUTCOME)] = value

    def pick(self) -> Any:
        """Return a seed (40%), an input that was answered (30%), or one of any outcome."""
        rng, chance = self._rng, self._rng.random()
        if chance < 0.4 or not self._kinds:
            return rng.choice(self._seeds)
        kinds = self._answers if chance < 0.7 and self._answers else self._kinds
        return rng.choice(self._by_kind[rng.choice(kinds)])
