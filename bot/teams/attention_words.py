"""What the sync core saw when it asked for attention (`AttentionDetail`), in words for the alert card.

The sync core hands over reasons and data only; the sentences a person reads are written here, next to
the cards that show them.
"""

from __future__ import annotations

from bot.sync.ports import AttentionDetail, AttentionReason
from cards.failure_words import run_failure_words


def failure_words(detail: AttentionDetail) -> str:
    """The run's failure in words: from its kind, or (a run stored before kinds) its own text."""
    if detail.failure_kind is None:
        return detail.error
    return run_failure_words(detail.failure_kind, detail.provider, detail.detail, detail.code)


def attention_words(reason: AttentionReason, detail: AttentionDetail) -> str:
    if reason is AttentionReason.REPEATED_FAILURES and detail.failed_runs:
        text = f"The last {detail.failed_runs} runs failed"
        error = failure_words(detail)
        return f"{text}: {error}" if error else f"{text}."
    if reason is AttentionReason.XERO_DAILY_LIMIT and detail.calls_left is not None:
        return f"Only {detail.calls_left} Xero API calls are left today for this organisation."
    if reason is AttentionReason.TIMEZONE_MISMATCH and detail.timezone_from and detail.timezone_to:
        return f"The Xero organisation's timezone changed from {detail.timezone_from} to {detail.timezone_to}."
    return failure_words(detail)
