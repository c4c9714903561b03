"""Driving the Agents Playground's page as a person does: open a chat, type, @mention, read cards, click.

What this page needs that a plain Playwright script would get wrong (learnt on Playground 0.2.28):
- The Adaptive Card renderer re-renders a card when the mouse first enters it, which resets what was
  typed into its inputs. So every card interaction hovers the card first, then types, then clicks.
- `Action.OpenUrl` buttons have the role "link"; Submit and Execute buttons the role "button".
- In a channel a message reaches the bot only with an @mention picked from the typeahead; each post
  is a thread (a `role=group`, newest on top) and replies, proactive ones too, go into the thread.
- A group chat ("Group Chat": `conversationType: groupChat`, several people) also needs the @mention,
  as in Teams; its messages are one list, oldest first, like a personal chat.
- The left pane repeats the last message of each chat, so texts are looked for outside it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.e2e.stack import Product

BOT_NAME = "Test Bot"
SIDEBAR = "[role=region]"
EDITOR = "[data-lexical-editor=true]"
CARD = ".ac-adaptiveCard"
# A channel's threads: every group with a reply box (the new-post box at the top is one too).
_THREADS_CSS = "[role=group]:has([data-lexical-editor=true])"
_THREADS_XPATH = "//*[@role='group'][.//*[@data-lexical-editor='true']]"
STEP_TIMEOUT_MS = 20_000  # one step of the bot: a reply, a card update, a page of the sandbox
RUN_TIMEOUT_MS = 60_000  # a sync run, from the click to its result card


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "step"


@dataclass
class Steps:
    """Numbered screenshots of every step, and how long each step took, under the test's artifacts."""

    directory: Path
    started: float = field(default_factory=time.monotonic)
    timings: list[tuple[str, float]] = field(default_factory=list)
    _last: float = field(default_factory=time.monotonic)

    def shot(self, page: Page, label: str) -> Path:
        now = time.monotonic()
        self.timings.append((label, now - self._last))
        self._last = now
        path = self.directory / f"{len(self.timings):02d}-{_slug(label)}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    def report(self) -> str:
        lines = [f"{seconds:6.1f} s  {label}" for label, seconds in self.timings]
        lines.append(f"{time.monotonic() - self.started:6.1f} s  total")
        return "\n".join(lines)


class Conversation:
    """What personal chats and channel threads share: reading messages and using cards."""

    def __init__(self, page: Page, steps: Steps) -> None:
        self.page = page
        self.steps = steps

    def shot(self, label: str) -> None:
        self.steps.shot(self.page, label)

    @property
    def scope(self) -> Locator:
        """Where this conversation's messages are (a channel thread narrows it)."""
        return self.page.locator("body")

    def text(self, text: str | re.Pattern[str]) -> Locator:
        """The last element showing `text` in the conversation, not in the left pane's previews."""
        return self.scope.get_by_text(text).and_(self.page.locator(f":not({SIDEBAR} *)")).last

    def wait_text(self, text: str | re.Pattern[str], timeout: float = STEP_TIMEOUT_MS) -> Locator:
        found = self.text(text)
        found.wait_for(state="visible", timeout=timeout)
        return found

    def card(self, text: str | re.Pattern[str]) -> Locator:
        """The last Adaptive Card that shows `text`."""
        return self.scope.locator(CARD).filter(has_text=text).last

    def wait_card(self, text: str | re.Pattern[str], timeout: float = STEP_TIMEOUT_MS) -> Locator:
        card = self.card(text)
        card.wait_for(state="visible", timeout=timeout)
        card.scroll_into_view_if_needed()
        return card

    @staticmethod
    def touch(card: Locator) -> None:
        """Let the card do its hover re-render now, before anything is typed into it."""
        card.scroll_into_view_if_needed()
        card.hover()

    def click(self, card: Locator, button: str) -> None:
        self.touch(card)
        card.get_by_role("button", name=button, exact=True).click()

    def fill(self, card: Locator, label: str, value: str) -> None:
        self.touch(card)
        card.get_by_label(label, exact=False).first.fill(value)

    def choose_radio(self, card: Locator, option: str | re.Pattern[str]) -> None:
        self.touch(card)
        card.get_by_role("radio", name=option).check()

    def pick_filtered(self, card: Locator, label: str, typed: str, option: str | re.Pattern[str]) -> None:
        """A `style: filtered` ChoiceSet (a combobox): type part of the choice, pick it from the list."""
        self.touch(card)
        box = card.get_by_role("combobox", name=label).first
        if isinstance(option, str) and box.input_value() == option:
            return  # already chosen: retyping would leave the typed text (the renderer keeps the choice)
        box.click()
        box.press("Control+a")
        box.press_sequentially(typed, delay=20)
        self.page.get_by_role("option", name=option, exact=isinstance(option, str)).first.click()
        if isinstance(option, str):
            expect(box).to_have_value(option)

    @contextmanager
    def popup(self, card: Locator, link: str) -> Iterator[Page]:
        """Click an `Action.OpenUrl` button and hand over the window it opens; closed afterwards."""
        self.touch(card)
        with self.page.expect_popup(timeout=STEP_TIMEOUT_MS) as opened:
            card.get_by_role("link", name=link, exact=True).click()
        window = opened.value
        window.set_viewport_size({"width": 900, "height": 800})
        window.wait_for_load_state()
        try:
            yield window
        finally:
            if not window.is_closed():
                window.close()


class PersonalChat(Conversation):
    def send(self, text: str) -> None:
        editor = self.page.locator(EDITOR).last
        editor.click()
        editor.fill(text)
        editor.press("Enter")


class GroupChat(Conversation):
    def send(self, text: str) -> None:
        """@mention the bot, then the text: without the mention the bot never sees the message."""
        editor = self.page.locator(EDITOR).last
        mention(self.page, editor)
        editor.press_sequentially(f" {text}")
        editor.press("Enter")


class Thread(Conversation):
    """One thread of a channel: the post that started it and every reply under it."""

    def __init__(self, page: Page, steps: Steps, locator: Locator) -> None:
        super().__init__(page, steps)
        self.locator = locator

    @property
    def scope(self) -> Locator:
        return self.locator


def mention(page: Page, editor: Locator) -> None:
    """Type "@" and the bot's first name, and pick the bot from the typeahead, as a person does."""
    editor.click()
    editor.press_sequentially("@" + BOT_NAME.split()[0], delay=20)
    page.get_by_role("listbox", name="Typeahead menu").get_by_text(BOT_NAME, exact=True).click()


class Channel:
    """A Teams channel: new posts at the top; the bot sees a post only when it @mentions it."""

    def __init__(self, page: Page, steps: Steps) -> None:
        self.page = page
        self.steps = steps

    def shot(self, label: str) -> None:
        self.steps.shot(self.page, label)

    def post(self, text: str) -> Thread:
        """Start a new thread that @mentions the bot; returns that thread."""
        editor = self.page.locator(EDITOR).first
        mention(self.page, editor)
        editor.press_sequentially(f" {text}")
        self.page.get_by_role("button", name="Post", exact=True).click()
        # The user's post shows as "<bot name> <text>"; the newest thread holding it is this one.
        mine = self.page.get_by_text(f"{BOT_NAME} {text}", exact=True)
        return self._pinned(self.page.get_by_role("group").filter(has=mine).first)

    def thread_with(self, text: str | re.Pattern[str], timeout: float = STEP_TIMEOUT_MS) -> Thread:
        """The newest thread with a card showing `text` (e.g. the one the bot started), once it is there."""
        cards = self.page.locator(CARD).filter(has_text=text)
        return self._pinned(self.page.get_by_role("group").filter(has=cards).first, timeout)

    def _pinned(self, found: Locator, timeout: float = STEP_TIMEOUT_MS) -> Thread:
        """The thread `found` points at now, for good: cards in it change (the setup card's title does)
        but its place counted from the oldest thread does not, since new threads go on top."""
        found.wait_for(state="visible", timeout=timeout)
        index, count = found.evaluate(
            "(el, css) => { const all = [...document.querySelectorAll(css)]; return [all.indexOf(el), all.length]; }",
            _THREADS_CSS,
        )
        assert index >= 0, "that element is not a thread of this channel"
        pinned = self.page.locator(f"xpath=({_THREADS_XPATH})[last()-{count - 1 - index}]")
        return Thread(self.page, self.steps, pinned)


class PlaygroundPage:
    def __init__(self, page: Page, url: str, steps: Steps) -> None:
        self.page = page
        self.url = url
        self.steps = steps

    def open(self) -> None:
        self.page.goto(self.url)
        self.page.get_by_role("treeitem", name="Personal Chat").wait_for(timeout=STEP_TIMEOUT_MS)
        # The log panel takes a third of the width and repeats every message: close it.
        toggle = self.page.get_by_title("Toggle Log Panel")
        if self.page.get_by_text("Log Panel", exact=True).is_visible():
            toggle.click()
            self.page.get_by_text("Log Panel", exact=True).wait_for(state="hidden", timeout=STEP_TIMEOUT_MS)

    def personal_chat(self) -> PersonalChat:
        self.page.get_by_role("treeitem", name="Personal Chat").click()
        self.page.locator(EDITOR).last.wait_for(timeout=STEP_TIMEOUT_MS)
        return PersonalChat(self.page, self.steps)

    def group_chat(self) -> GroupChat:
        # The item's name starts with the members' initials (its avatar), then "Group Chat".
        self.page.get_by_role("treeitem", name=re.compile(r"Group Chat$")).click()
        self.page.locator(EDITOR).last.wait_for(timeout=STEP_TIMEOUT_MS)
        return GroupChat(self.page, self.steps)

    def channel(self, name: str = "General") -> Channel:
        self.page.get_by_role("treeitem", name=f"My Team - {name}").click()
        self.page.get_by_role("button", name="Post", exact=True).wait_for(timeout=STEP_TIMEOUT_MS)
        return Channel(self.page, self.steps)


@dataclass
class E2E:
    """What a test drives and checks: the Playground's page and the product behind it."""

    app: PlaygroundPage
    product: Product
    steps: Steps
