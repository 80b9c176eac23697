"""A class opening the app at once: many Chromium sessions on one server, every page visited together.

Shared by ``tests/e2e/test_e2e_classroom.py`` (no exception anywhere, every page finished) and
``benchmarks/bench_classroom.py`` (time to a finished render per page, against one session alone).
One Chromium process holds every session (one browser context each, like separate students), driven
with Playwright's asyncio API so the sessions really act at the same moment: all of them open the
first page by URL together, then all switch to the next page through the sidebar together, page
after page (a session that fails a page still goes on to the next one).

A page has *finished rendering* when, in the browser, its ``st.title`` is shown, the text it shows
only once its content is drawn is there, every image on it has loaded, and Streamlit's script state
is ``notRunning`` — and still is a moment later (a page's own rerun flips it back to running). The
time to a finished render is taken from the navigation (the click or the URL) to the first moment all
of these held. An ``st.exception`` ends the wait.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, ERROR, EXCEPTION, PAGES, VIEWPORT, AppPage

COMPETITION_PAGES = (
    AppPage("submit", "competition_student", "Submit", "Competition", "No competition on this server yet"),
    AppPage("standings", "competition_board", "Standings", "Standings", "No competition on this server yet"),
)
CLASSROOM_PAGES: tuple[AppPage, ...] = (*PAGES.values(), *COMPETITION_PAGES)
SETTLE_S = 0.3  # the script state must stay "notRunning" this long
POLL_MS = 150  # in-browser polling of the finished-render condition (no round trip per check)

# Evaluated in the page: "exception" as soon as an st.exception shows, "done" once the page has finished.
RENDER_STATE_JS = """({heading, ready}) => {
  if (document.querySelector('[data-testid="stException"]')) return "exception";
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return false;
  const titled = [...main.querySelectorAll('h1')].some(h => h.innerText.trim() === heading);
  const pictured = [...main.querySelectorAll('img')].every(img => img.complete);  // the gallery's images arrived
  return titled && pictured && main.innerText.includes(ready) ? "done" : false;
}"""


@dataclass
class Visit:
    """One session's visit of one page."""

    session: int
    page: str  # AppPage.slug
    seconds: float | None  # navigation to finished render; None when it never finished
    problems: list[str] = field(default_factory=list)  # exception and error texts, timeouts


@dataclass
class PageFigures:
    """Every session's visit of one page, summarised."""

    page: str
    worst_s: float | None
    median_s: float | None
    finished: int
    sessions: int
    problems: list[str]


async def wait_rendered(page: Page, app_page: AppPage, timeout_s: float) -> tuple[float, str]:
    """``(monotonic time the page finished, "done" | "exception")``; raises PlaywrightError on timeout."""
    deadline = time.monotonic() + timeout_s
    arguments = {"heading": app_page.heading, "ready": app_page.ready}
    while True:
        remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        handle = await page.wait_for_function(RENDER_STATE_JS, arg=arguments, polling=POLL_MS, timeout=remaining_ms)
        state, finished = await handle.json_value(), time.monotonic()
        if state == "exception":
            return finished, state
        await asyncio.sleep(SETTLE_S)
        if await page.evaluate(RENDER_STATE_JS, arguments) == "done":
            return finished, "done"


PROBLEMS_JS = """([exception, error]) => {
  const first = node => node.innerText.trim().split('\\n')[0];
  const exceptions = [...document.querySelectorAll(exception)].map(node => 'exception: ' + first(node));
  const errors = [...document.querySelectorAll(error)].filter(node => !node.closest(exception))
    .map(node => 'error: ' + first(node));
  return [...exceptions, ...errors];
}"""


async def shown_problems(page: Page) -> list[str]:
    """The first line of every st.exception and st.error on the page (an exception's own alert once)."""
    return await page.evaluate(PROBLEMS_JS, [EXCEPTION, ERROR])


async def visit(page: Page, session: int, app_page: AppPage, url: str | None, timeout_s: float) -> Visit:
    """Open ``app_page`` (by ``url``, else through the sidebar) and wait for its finished render."""
    started = time.monotonic()
    try:
        if url is not None:
            await page.goto(url, timeout=timeout_s * 1000)
        else:
            link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=app_page.nav, exact=True)
            more = page.get_by_test_id("stSidebarNavViewButton")  # a long page list is folded after the first ones
            if not await link.is_visible() and await more.is_visible():
                await more.click(timeout=timeout_s * 1000)
            await link.click(timeout=timeout_s * 1000)
        finished, _ = await wait_rendered(page, app_page, timeout_s - (time.monotonic() - started))
    except PlaywrightError as error:
        problems = await _problems_or_none(page)
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Visit(session, app_page.slug, None, [f"not finished within {timeout_s:.0f} s ({first_line})", *problems])
    return Visit(session, app_page.slug, finished - started, await shown_problems(page))


async def _problems_or_none(page: Page) -> list[str]:
    try:
        return await shown_problems(page)
    except PlaywrightError:
        return []


async def _class_visits(
    url: str, sessions: int, pages: Sequence[AppPage], timeout_s: float, query: str, stop_on_problem: bool
) -> list[Visit]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(sessions)]
            tabs = [await context.new_page() for context in contexts]
            visits: list[Visit] = []
            troubled = set(range(sessions))  # sessions that open the next page by URL: all of them at first
            for app_page in pages:
                by_url = f"{url}/{app_page.path}{query}"
                together = [
                    visit(tab, index, app_page, by_url if index in troubled else None, timeout_s)
                    for index, tab in enumerate(tabs)
                ]
                done = await asyncio.gather(*together)
                visits += done
                # A session that met a problem may have no sidebar left (app.py itself failed): it reloads by URL.
                troubled = {result.session for result in done if result.problems}
                if troubled and stop_on_problem:
                    break
            return visits
        finally:
            await browser.close()


def class_visits(
    url: str,
    sessions: int,
    pages: Sequence[AppPage] = CLASSROOM_PAGES,
    timeout_s: float = 120.0,
    query: str = "",
    stop_on_problem: bool = False,
) -> list[Visit]:
    """``sessions`` browser sessions open ``pages[0]`` by URL (plus ``query``, e.g. ``?shapes=...``) at the
    same moment, then switch to each next page together through the sidebar; every session's visit of
    every page, in page order. A session that met a problem opens the next page by URL (a new session);
    with ``stop_on_problem`` no further page is visited once any session met one (a test's fast failure)."""
    return asyncio.run(_class_visits(url, sessions, pages, timeout_s, query, stop_on_problem))


def page_figures(visits: Sequence[Visit]) -> list[PageFigures]:
    """Worst and median time to a finished render per page (over the sessions that finished), in visit order."""
    slugs = list(dict.fromkeys(visit.page for visit in visits))
    figures = []
    for slug in slugs:
        mine = [visit for visit in visits if visit.page == slug]
        times = [visit.seconds for visit in mine if visit.seconds is not None]
        problems = [f"session {visit.session}: {problem}" for visit in mine for problem in visit.problems]
        worst, median = (max(times), statistics.median(times)) if times else (None, None)
        figures.append(PageFigures(slug, worst, median, len(times), len(mine), problems))
    return figures
