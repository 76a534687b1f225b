"""The hard budget and its reservation protocol: tokens in, tokens out and US dollars, per campaign and round.

Every call is *reserved* before it is sent, at an upper bound of what it can cost (its prompt's tokens
bounded from its bytes, and its ``max_tokens``), and *settled* from the usage the provider reports (or, when
its outcome is unknown, at its expected cost, flagged). A reservation that would take ``spent + reserved``
past any cap is refused, so the caps are never crossed by a provider that keeps to ``max_tokens``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from distilloop.core.types import Spend
from distilloop.errors import BudgetExhausted

log = logging.getLogger(__name__)

RESOURCES = ("tokens_in", "tokens_out", "usd")


@dataclass(frozen=True)
class Caps:
    """Upper limits; ``None`` means no cap on that resource."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    usd: float | None = None

    def get(self, resource: str) -> float | None:
        return getattr(self, resource)


@dataclass(frozen=True)
class Reservation:
    id: int
    amount: Spend
    round_no: int


#: the [budget] key of each campaign cap
CAP_KEYS = {"tokens_in": "max_tokens_in", "tokens_out": "max_tokens_out", "usd": "max_usd"}


def amount(resource: str, value: float) -> str:
    """``value`` of ``resource`` as said to a person: $0.0030, 1,386 tokens."""
    return f"${value:,.4f}" if resource == "usd" else f"{value:,.0f} tokens"


def _get(s: Spend, resource: str) -> float:
    return float(getattr(s, resource))


class Budget:
    """Tracks spent and reserved amounts against campaign and per-round caps (thread-safe)."""

    def __init__(self, campaign: Caps, per_round: Caps | None = None, *, spent: Spend = Spend(),
                 spent_this_round: Spend = Spend(), round_no: int = 0) -> None:
        self.campaign = campaign
        self.per_round = per_round or Caps()
        self.spent = spent
        self.round_spent = spent_this_round
        self.round_no = round_no
        self._reserved: dict[int, Reservation] = {}
        self._next = 0
        self._lock = threading.Lock()

    # -- views -----------------------------------------------------------------------------------------
    @property
    def reserved(self) -> Spend:
        total = Spend()
        for r in self._reserved.values():
            total = total + r.amount
        return total

    def _round_reserved(self) -> Spend:
        total = Spend()
        for r in self._reserved.values():
            if r.round_no == self.round_no:
                total = total + r.amount
        return total

    def remaining(self) -> dict[str, float | None]:
        """What can still be reserved in this round, per resource (``None``: unlimited)."""
        out: dict[str, float | None] = {}
        committed = self.spent + self.reserved
        round_committed = self.round_spent + self._round_reserved()
        for res in RESOURCES:
            left = []
            cap = self.campaign.get(res)
            if cap is not None:
                left.append(cap - _get(committed, res))
            rcap = self.per_round.get(res)
            if rcap is not None:
                left.append(rcap - _get(round_committed, res))
            out[res] = min(left) if left else None
        return out

    def exhausted(self) -> tuple[str, str] | None:
        """(scope, resource) of a campaign cap with nothing left, else ``None``.

        A cap of 0 is never "exhausted" by itself: it allows free calls only (e.g. ``max_usd = 0`` with local
        teachers), and a call that costs anything is refused at reservation.
        """
        committed = self.spent + self.reserved
        for res in RESOURCES:
            cap = self.campaign.get(res)
            if cap is not None and cap > 0 and _get(committed, res) >= cap:
                return ("campaign", res)
        return None

    # -- the protocol ----------------------------------------------------------------------------------
    def new_round(self, round_no: int, spent_this_round: Spend = Spend()) -> None:
        with self._lock:
            self.round_no = round_no
            self.round_spent = spent_this_round

    def can_afford(self, amount: Spend) -> bool:
        return self._check(amount) is None

    def _check(self, amount: Spend) -> tuple[str, str, float, float] | None:
        committed = self.spent + self.reserved
        round_committed = self.round_spent + self._round_reserved()
        for res in RESOURCES:
            need = _get(amount, res)
            cap = self.campaign.get(res)
            if cap is not None and _get(committed, res) + need > cap + 1e-12:
                return ("campaign", res, cap, _get(committed, res))
            rcap = self.per_round.get(res)
            if rcap is not None and _get(round_committed, res) + need > rcap + 1e-12:
                return ("round", res, rcap, _get(round_committed, res))
        return None

    def reserve(self, amount: Spend) -> Reservation:
        """Reserve ``amount`` or raise :class:`BudgetExhausted`; nothing is sent without a reservation."""
        if min(amount.tokens_in, amount.tokens_out, amount.usd) < 0:
            raise ValueError(f"a reservation must not be negative, got {amount}")
        with self._lock:
            over = self._check(amount)
            if over is not None:
                scope, res, cap, used = over
                raise BudgetExhausted(
                    f"{scope} budget for {res} would be crossed: {used:g} committed + {_get(amount, res):g} "
                    f"for this call > cap {cap:g}", scope=scope, resource=res)
            self._next += 1
            r = Reservation(self._next, amount, self.round_no)
            self._reserved[r.id] = r
            return r

    def hold(self, amount: Spend) -> Reservation:
        """Reserve ``amount`` without checking the caps: re-attaches a reservation an earlier process made
        (a call submitted to a provider batch, not yet in the ledger), so it counts until it is settled."""
        with self._lock:
            self._next += 1
            r = Reservation(self._next, amount, self.round_no)
            self._reserved[r.id] = r
            return r

    def settle(self, reservation: Reservation, actual: Spend) -> None:
        """Release ``reservation`` and charge ``actual`` (the usage the provider reported)."""
        with self._lock:
            if self._reserved.pop(reservation.id, None) is None:
                raise ValueError(f"reservation {reservation.id} was already settled or released")
            for res in RESOURCES:
                if _get(actual, res) > _get(reservation.amount, res) + 1e-9:
                    log.warning("call used more %s (%g) than reserved (%g); the estimate is not an upper "
                                "bound for this teacher", res, _get(actual, res), _get(reservation.amount, res))
            self.spent = self.spent + actual
            if reservation.round_no == self.round_no:
                self.round_spent = self.round_spent + actual

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back unused (the call was never sent)."""
        with self._lock:
            self._reserved.pop(reservation.id, None)

    def adjust(self, delta: Spend, round_no: int | None = None) -> None:
        """Correct what was charged (an estimate re-based, a lost answer found again at the provider)."""
        with self._lock:
            self.spent = self.spent + delta
            if round_no is None or round_no == self.round_no:
                self.round_spent = self.round_spent + delta

    def holds(self, reservation: Reservation) -> bool:
        """Whether ``reservation`` is still open (neither settled nor released)."""
        return reservation.id in self._reserved

    @property
    def holding(self) -> int:
        """Reservations not settled or released yet."""
        return len(self._reserved)
