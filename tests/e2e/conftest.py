"""The e2e harness: the product and the Agents Playground as child processes, headless Chromium driving it.

Each test gets its own product (sandboxes + bot, fresh data directory) and its own Playground, on free
ports, and a fresh browser context. Every step leaves a screenshot under tests/e2e/artifacts/<test>/,
with `timings.txt`; on failure the bot's and the Playground's logs, the browser console and the page's
HTML are kept there too.

They run wherever the suite runs: when Chromium, Node.js or the Playground is missing each of them
fails with one line saying what is missing and how to install it (`make test` installs them where it
can, and stops before pytest with that line where it cannot). The only way to leave them out is to
say so: with `E2E=0` their modules are not collected and the summary says "end-to-end tests not run:
E2E=0", so they are never silently absent.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Playground, Product, chromium_path, missing_tools

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
]
_LOCAL = re.compile(r"^(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:/|$)")
_FAILED = pytest.StashKey[bool]()
_SKIPS: list[str] = []
_HERE = Path(__file__).resolve().parent
_LEFT_OUT: list[str] = []  # test modules not collected because of E2E=0


def opted_out() -> bool:
    """`E2E=0` (or false/no/off): the person running the suite chose to leave these tests out."""
    return os.environ.get("E2E", "").strip().lower() in ("0", "false", "no", "off")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Not even imported: a machine that opted out may lack Playwright's browser-side pieces.
    if opted_out() and collection_path.parent == _HERE and collection_path.name.startswith("test_"):
        _LEFT_OUT.append(collection_path.name)
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One rerun for each end-to-end test. The Agents Playground is Microsoft's client, run offline; about
    once in six channel runs here it dropped a reply of the bot in a thread (its console logged "Saga error:
    Invalid conversation id ..." while the bot logged the reply as sent): its page learnt the id of the
    person's post after the bot's reply arrived. `post_order.js` now holds such a reply until the page
    knows the post. A rerun shows as `R` in the summary; a real fault in the bot fails both tries."""
    for item in items:
        if item.get_closest_marker("e2e") is not None and item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=1))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    if report.skipped and item.get_closest_marker("e2e") is not None and report.when == "setup":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPS.append(f"{item.nodeid}: {reason}")
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly that the end-to-end tests did not run, and why (-q hides skip reasons)."""
    if _LEFT_OUT or (_SKIPS and opted_out()):
        terminalreporter.write_sep("!", "end-to-end tests not run: E2E=0")
    elif _SKIPS:
        terminalreporter.section("end-to-end tests skipped", sep="!")
        for line in dict.fromkeys(_SKIPS):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def e2e_ready() -> None:
    if opted_out():  # a module named on the command line is collected even with E2E=0
        pytest.skip("E2E=0")
    reason = missing_tools()
    if reason is not None:
        pytest.fail(f"the end-to-end tests cannot run: {reason}; or opt out with E2E=0", pytrace=False)


@pytest.fixture
def browser(e2e_ready: None) -> Iterator[Any]:
    """Chromium for one test. Not shared across tests: while Playwright's sync API is open, its event
    loop counts as running in this thread, and the async tests that follow could not start theirs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The system's Chromium, never a downloaded one; no calls home (this machine has no internet).
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    directory = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def _failed(request: pytest.FixtureRequest) -> bool:
    return request.node.stash.get(_FAILED, False)


@contextmanager
def _keep_log_on_failure(request: pytest.FixtureRequest, log: Path, kept: Path) -> Iterator[None]:
    """Copy a child's log into the artifacts when it failed to start or the test failed."""
    try:
        yield
    except BaseException:
        if log.exists():
            shutil.copy(log, kept)
        raise
    if _failed(request) and log.exists():
        shutil.copy(log, kept)


@pytest.fixture
def product(
    e2e_ready: None, tmp_path: Path, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Product]:
    running = Product(data_dir=tmp_path / "data", log_path=tmp_path / "bot.log")
    with _keep_log_on_failure(request, running.log_path, artifacts / "bot.log"):
        running.start()
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def playground(
    product: Product, tmp_path: Path, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Playground]:
    running = Playground(
        bot_port=product.port, work_dir=tmp_path / "playground", log_path=tmp_path / "playground.log"
    )
    with _keep_log_on_failure(request, running.log_path, artifacts / "playground.log"):
        running.start()
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def e2e(
    browser: Any, product: Product, playground: Playground, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    from tests.e2e.playground import E2E, PlaygroundPage, Steps

    console: list[str] = []
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        # Certificate errors count, as in a person's browser: the Entra sandbox's TLS comes from a local
        # CA this profile does not trust, so the pages a browser opens must be served without it
        # (sandbox/entra/README.md, "Two origins"). Every setup these tests walk proves that they are.
        ignore_https_errors=False,
        locale="en-GB",
        timezone_id="Europe/London",
    )

    def only_local(route: Any) -> None:
        # The page loads fonts from a CDN and the sign-in page Teams' JS library: this machine is offline.
        url = route.request.url
        if url.startswith(("data:", "blob:")) or _LOCAL.match(url):
            route.continue_()
        else:
            console.append(f"[blocked] {route.request.method} {url}")
            route.abort()

    context.route("**/*", only_local)
    # The Playground's page drops a reply that reaches it before the answer to the page's own post
    # (docs/e2e.md, "When one fails"): such a message waits until the page has shown the post.
    context.add_init_script(path=str(_HERE / "post_order.js"))

    def watch(page: Any) -> None:
        page.on("console", lambda m: console.append(f"[{page.url[:60]}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"[{page.url[:60]}] pageerror: {e}"))

    context.on("page", watch)
    context.set_default_timeout(20_000)
    page = context.new_page()
    steps = Steps(artifacts)
    app = PlaygroundPage(page, playground.url, steps)
    try:
        app.open()
        yield E2E(app=app, product=product, steps=steps)
    finally:
        (artifacts / "timings.txt").write_text(steps.report() + "\n")
        if _failed(request):
            try:
                page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
                (artifacts / "page.html").write_text(page.content())
                for n, other in enumerate(p for p in context.pages if p is not page):
                    other.screenshot(path=str(artifacts / f"failure-popup-{n}.png"))
                    (artifacts / f"popup-{n}.html").write_text(other.content())
            except Exception as exc:
                console.append(f"[harness] could not save the page: {exc}")
            (artifacts / "console.log").write_text("\n".join(console) + "\n")
        context.close()
