"""Issue 16: the sync core and the store hand data across their boundaries, never sentences for the chat.

Every string literal in `bot/sync` and `bot/storage` is read (with the AST, so a sentence split over
lines or inside an f-string is found too). A literal that reads like a sentence fails this test unless
it is one of:
- a docstring or a comment (not a literal at all);
- an argument of a logging call (`log.info(...)`): the operator's log, in English on purpose;
- the Dataverse solution's own labels and descriptions (`tables.py`, `table_choices.py`): they are
  shipped in `customizations.xml` and shown by Dynamics 365's own screens, not by the bot.

The words a person reads in Teams (and on the Connector row) are written in `cards/failure_words.py`,
`bot/teams/attention_words.py`, `bot/teams/refusals.py` and `bot/dialogs/wording.py`, from the kinds, codes
and data that `bot/errors.py` and `bot/storage/run_kinds.py` define.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot/sync", "bot/storage")
SOLUTION_LABELS = {"bot/sync/tables.py", "bot/sync/table_choices.py"}
# A capitalised word then two lower-case words ("Dataverse answered something"), or three words and a
# full stop ("this connection no longer exists.").
SENTENCE = re.compile(r"^[A-Z][a-z']* [a-z]+ [a-z]|^\w+ \w+ \w+.*\.\s*$")
LOGGERS = {"log", "logger", "logging", "_log"}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _logged(tree: ast.AST) -> set[int]:
    """Every node inside the arguments of a logging call."""
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in LOGGERS
        ):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                found.update(id(n) for n in ast.walk(arg))
    return found


def sentences(source: str, name: str) -> list[str]:
    tree = ast.parse(source)
    allowed = _docstrings(tree) | _logged(tree)
    for node in ast.walk(tree):  # an f-string is read whole, not also part by part
        if isinstance(node, ast.JoinedStr):
            allowed.update(id(v) for v in node.values)
    found = []
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if SENTENCE.search(text.strip()):
            found.append(f"{name}:{node.lineno}: {text[:80]!r}")
    return found


def modules() -> list[Path]:
    return sorted(
        p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if str(p.relative_to(ROOT)) not in SOLUTION_LABELS
    )


def test_the_sync_core_and_the_store_write_no_sentences() -> None:
    found = [
        line
        for path in modules()
        for line in sentences(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == [], "sentences for a person belong in the wording modules:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'raise ProviderError("Dataverse answered something unreadable")',
        'raise NotFound("This connection no longer exists.")',
        'x = f"Xero refused the grant: {detail}; connect Xero again"',
        'x = ("Xero rejected the app\'s credentials: "\n     "check XERO_CLIENT_ID")',
    ],
)
def test_the_check_finds_the_sentences_it_is_meant_to(source: str) -> None:
    assert len(sentences(source, "probe.py")) == 1


def test_the_check_leaves_docstrings_logs_and_data_alone() -> None:
    source = '''"""The module says what it does in a sentence."""
log.info("Xero refused the refresh token of connection %s: reconnect required", cid)
raise ProviderError(Problem.BAD_RESPONSE, provider="xero", where="Accounts")
code = "token_lock_busy"
'''
    assert sentences(source, "probe.py") == []
