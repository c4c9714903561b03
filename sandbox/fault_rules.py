"""The queue behind each sandbox's `fail_next`: rules taken in the order they were set, each good for n
requests. What a rule matches and what its failure looks like stay with each service (its faults module):
Xero, Entra ID and Dataverse each answer an outage in their own words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar


@dataclass
class Rule:
    """One switch: the next `remaining` requests it matches fail. `path_prefix` None: the service's
    default target (Xero: any path; Entra: its token endpoint); otherwise any path starting with it,
    case-insensitively."""

    remaining: int
    path_prefix: str | None

    def prefix_matches(self, path: str) -> bool:
        return self.path_prefix is not None and path.lower().startswith(self.path_prefix.lower())


R = TypeVar("R", bound=Rule)


class RuleQueue(Generic[R]):
    def __init__(self) -> None:
        self._rules: list[R] = []

    def add(self, rule: R) -> None:
        if rule.remaining < 1:
            raise ValueError("a fault needs n >= 1")
        self._rules.append(rule)

    def clear(self) -> None:
        self._rules.clear()

    @property
    def pending(self) -> int:
        """How many requests the queued rules will still fail."""
        return sum(rule.remaining for rule in self._rules)

    def take(self, matches: Callable[[R], bool]) -> R | None:
        """The first rule `matches` accepts, with one of its n used up (removed when none are left)."""
        for rule in self._rules:
            if matches(rule):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule
        return None
