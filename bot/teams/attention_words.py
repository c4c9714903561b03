"""What the sync core saw when it asked for attention (`AttentionDetail`), in words for the alert card.

The sync core hands over reasons and data only; the sentences a person reads are written here, next to
the cards that show them.
"""

from __future__ import annotations

from bot.sync.ports import AttentionDetail, AttentionReason


def attention_words(reason: AttentionReason, detail: AttentionDetail) -> str:
    if reason is AttentionReason.REPEATED_FAILURES and detail.failed_runs:
        text = f"The last {detail.failed_runs} runs failed"
        return f"{text}: {detail.error}" if detail.error else f"{text}."
    if reason is AttentionReason.XERO_DAILY_LIMIT and detail.calls_left is not None:
        return f"Only {detail.calls_left} Xero API calls are left today for this organisation."
    if reason is AttentionReason.TIMEZONE_MISMATCH and detail.timezone_from and detail.timezone_to:
        return f"The Xero organisation's timezone changed from {detail.timezone_from} to {detail.timezone_to}."
    return detail.error
