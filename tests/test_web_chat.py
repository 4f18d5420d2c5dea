"""The web chat in a real browser (Debian's headless Chromium) against the real mesh:
a message, a tool chip that appears before the reply, an approval card answered
with its button, the reply, and an unknown session that does not break the page.
On a phone's screen (390x844) the session list folds away, a first visit types at
once, and a call is approved with the keyboard alone.

The browser driver blocks, and the test session's workers share its event loop:
each scenario runs in a thread while the loop keeps serving the mesh."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import WebApi

pytestmark = pytest.mark.asyncio

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"
# README shows the phone's screenshot. Every run saves it under ARTIFACTS; with
# MESH_UPDATE_SCREENSHOTS=1 it also replaces the committed one, so a test run
# does not leave the checkout changed.
DOCS_SCREENSHOT = Path(__file__).parent.parent / "docs" / "web-chat-phone.png"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and DRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail(
                "Debian's chromium and chromium-driver are missing: scripts/test installs them"
            )
        pytest.skip("chromium and chromium-driver are not installed (scripts/test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


async def test_a_ticket_is_approved_with_a_button_and_tool_chips_appear_before_the_reply(
    browser: WebDriver, web_api: WebApi, tmp_path: Path
) -> None:
    await asyncio.to_thread(approve_a_ticket, browser, web_api, tmp_path)


async def test_a_long_message_wraps_and_an_unknown_session_says_so(
    browser: WebDriver, web_api: WebApi
) -> None:
    await asyncio.to_thread(long_message_and_unknown_session, browser, web_api)


async def test_on_a_phone_a_first_visit_types_at_once_and_approves_with_the_keyboard(
    browser: WebDriver, web_api: WebApi, tmp_path: Path
) -> None:
    await asyncio.to_thread(phone_first_visit, browser, web_api, tmp_path)


async def test_a_first_visit_can_type_without_starting_a_session_first(
    browser: WebDriver, web_api: WebApi
) -> None:
    await asyncio.to_thread(first_visit, browser, web_api)


async def test_a_message_sent_again_after_a_dropped_connection_runs_one_turn(
    browser: WebDriver, web_api: WebApi
) -> None:
    await asyncio.to_thread(dropped_connection, browser, web_api)


async def test_without_a_token_the_page_asks_to_sign_in(
    browser: WebDriver, web_api: WebApi
) -> None:
    await asyncio.to_thread(signed_out, browser, web_api)


def approve_a_ticket(browser: WebDriver, web_api: WebApi, tmp_path: Path) -> None:
    wait = WebDriverWait(browser, 60)
    browser.get(f"{web_api.url}/?token={web_api.token}")
    assert "token=" not in browser.current_url, "the token is removed from the address bar"
    wait.until(ec.element_to_be_clickable((By.ID, "new-session"))).click()
    box = wait.until(ec.element_to_be_clickable((By.ID, "message")))
    box.send_keys("Create a ticket in OPS: printer is broken", Keys.ENTER)

    chip = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".chip[data-call-id]")))
    assert chip.get_attribute("data-team") == "it" and "create_ticket" in chip.text
    assert not browser.find_elements(By.CSS_SELECTOR, ".reply"), "the chip came before the reply"
    approve = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".approval button.approve")))
    assert approve == browser.switch_to.active_element, "the card takes the keyboard's focus"
    approve.send_keys(Keys.ENTER)  # the keyboard alone

    reply = wait.until(
        ec.presence_of_element_located(
            (By.XPATH, "//li[contains(@class,'reply')][contains(.,'Created ticket')]")
        )
    )
    assert "model call" in reply.text  # usage per turn
    assert chip.get_attribute("data-state") == "ok" and "ok" in chip.text
    assert not browser.find_elements(By.CSS_SELECTOR, ".approval")

    box.send_keys("What is 15 * 23?", Keys.ENTER)
    wait.until(
        ec.presence_of_element_located(
            (By.XPATH, "//li[contains(@class,'reply')][contains(.,'345')]")
        )
    )
    link = browser.find_element(By.ID, "temporal-ui")
    assert "/namespaces/orchestrator/workflows/chat-" in (link.get_attribute("href") or "")

    ARTIFACTS.mkdir(exist_ok=True)
    for path in (ARTIFACTS / "web-chat.png", tmp_path / "web-chat.png"):
        assert browser.save_screenshot(str(path))


def long_message_and_unknown_session(browser: WebDriver, web_api: WebApi) -> None:
    wait = WebDriverWait(browser, 60)
    browser.get(f"{web_api.url}/?token={web_api.token}#chat-doesnotexist")
    notice = wait.until(ec.visibility_of_element_located((By.ID, "notice")))
    wait.until(lambda _: "Session not found" in notice.text)

    wait.until(ec.element_to_be_clickable((By.ID, "new-session"))).click()
    box = wait.until(ec.element_to_be_clickable((By.ID, "message")))
    long = "word " * 1500
    browser.execute_script("arguments[0].value = arguments[1]", box, long)
    box.send_keys(Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".reply")))
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth"), "no horizontal overflow"


def signed_out(browser: WebDriver, web_api: WebApi) -> None:
    browser.get(f"{web_api.url}/")
    browser.execute_script("localStorage.clear()")
    browser.get(f"{web_api.url}/")
    notice = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.ID, "notice")))
    assert "sign-in URL" in notice.text


def focused(browser: WebDriver) -> str:
    """What has the keyboard's focus: its id, or its class if it has none."""
    return str(
        browser.execute_script(
            "const e = document.activeElement; return e.id ? '#' + e.id : '.' + e.className"
        )
    )


def outline(browser: WebDriver) -> str:
    return str(
        browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    )


def phone_first_visit(browser: WebDriver, web_api: WebApi, tmp_path: Path) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    wait = WebDriverWait(browser, 60)
    browser.get(f"{web_api.url}/?token={web_api.token}")
    box = wait.until(ec.element_to_be_clickable((By.ID, "message")))
    assert focused(browser) == "#message", "a first visit can type at once"
    assert browser.execute_script("return window.innerWidth") == PHONE["width"]

    # The session list is folded behind a button; the message box has the width.
    assert not browser.find_element(By.ID, "sessions-panel").is_displayed()
    toggle = browser.find_element(By.ID, "sessions-toggle")
    assert toggle.is_displayed() and toggle.get_attribute("aria-expanded") == "false"
    assert box.size["width"] >= 0.6 * PHONE["width"], box.size

    # The keyboard alone from here: type, Enter, then the approval card.
    browser.switch_to.active_element.send_keys("Create a ticket in OPS: printer is broken")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".approval button.approve")))
    wait.until(lambda _: focused(browser) == ".approve")
    assert outline(browser) != "none", "the focused button shows it"
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert focused(browser) == ".deny" and outline(browser) != "none"
    browser.switch_to.active_element.send_keys(Keys.SHIFT, Keys.TAB)
    assert focused(browser) == ".approve"
    # The picture README shows: the card waiting, its Approve button focused.
    ARTIFACTS.mkdir(exist_ok=True)
    shots = [ARTIFACTS / "web-chat-phone.png", tmp_path / "web-chat-phone.png"]
    if os.environ.get("MESH_UPDATE_SCREENSHOTS") == "1":
        shots.append(DOCS_SCREENSHOT)
    for path in shots:
        assert browser.save_screenshot(str(path))
    browser.switch_to.active_element.send_keys(Keys.ENTER)

    reply = wait.until(
        ec.presence_of_element_located(
            (By.XPATH, "//li[contains(@class,'reply')][contains(.,'Created ticket')]")
        )
    )
    assert "model call" in reply.text
    chip = browser.find_element(By.CSS_SELECTOR, ".chip[data-call-id]")
    assert "create_ticket" in chip.text and chip.get_attribute("data-state") == "ok"
    assert not browser.find_elements(By.CSS_SELECTOR, ".approval")
    assert focused(browser) == "#message", "the keyboard is back where it types"
    session = browser.execute_script("return window.location.hash.slice(1)")
    assert session.startswith("chat-"), "the first message opened a session"
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "no horizontal overflow"

    # The session list opens over the conversation, names this session, and
    # Escape folds it away again.
    toggle.click()
    panel = wait.until(ec.visibility_of_element_located((By.ID, "sessions-panel")))
    assert toggle.get_attribute("aria-expanded") == "true"
    assert session in panel.text
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait.until(ec.invisibility_of_element_located((By.ID, "sessions-panel")))
    assert focused(browser) == "#sessions-toggle"


def first_visit(browser: WebDriver, web_api: WebApi) -> None:
    wait = WebDriverWait(browser, 60)
    browser.get(f"{web_api.url}/?token={web_api.token}")
    box = wait.until(ec.element_to_be_clickable((By.ID, "message")))
    assert box.is_enabled() and focused(browser) == "#message"
    assert browser.execute_script("return window.location.hash") == ""
    box.send_keys("What is 15 * 23?", Keys.ENTER)
    wait.until(
        ec.presence_of_element_located(
            (By.XPATH, "//li[contains(@class,'reply')][contains(.,'345')]")
        )
    )
    assert browser.execute_script("return window.location.hash").startswith("#chat-")
    # The new session is listed and marked as the one shown.
    current = browser.find_element(By.CSS_SELECTOR, "#sessions button[aria-current='true']")
    assert current.get_attribute("textContent").startswith(
        browser.execute_script("return window.location.hash.slice(1)") + " "
    )

    # A card that arrives while a message is being typed leaves the focus
    # there, so an Enter meant for the message approves nothing; Shift+Tab
    # reaches the card. (The event is handed to the page as the stream would.)
    box.send_keys("half a thought")
    browser.execute_script(
        "handle({kind: 'approval_requested', offset: 1e9, turn: 99, call_id: 'typed-over',"
        " name: 'create_ticket', location: 'it', arguments: {}, reason: ''})"
    )
    browser.find_element(By.CSS_SELECTOR, ".approval[data-call-id='typed-over']")
    assert focused(browser) == "#message"
    box.send_keys(Keys.SHIFT, Keys.TAB)
    assert focused(browser) == ".deny"


# Loaded before the page's own script: the first message's request reaches the
# API, which accepts it, and then the page sees the connection drop, as when a
# phone changes networks. Every message request's Idempotency-Key is recorded.
DROP_FIRST_MESSAGE = """
window.messageKeys = [];
const realFetch = window.fetch.bind(window);
let dropped = false;
window.fetch = async (url, options = {}) => {
  if (!String(url).endsWith("/messages")) return realFetch(url, options);
  window.messageKeys.push((options.headers || {})["Idempotency-Key"] || null);
  const response = await realFetch(url, options);
  if (dropped) return response;
  dropped = true;
  response.body.cancel();
  throw new TypeError("Failed to fetch");
};
"""


def dropped_connection(browser: WebDriver, web_api: WebApi) -> None:
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": DROP_FIRST_MESSAGE})
    wait = WebDriverWait(browser, 60)
    browser.get(f"{web_api.url}/?token={web_api.token}")
    box = wait.until(ec.element_to_be_clickable((By.ID, "message")))
    box.send_keys("What is 15 * 23?", Keys.ENTER)
    wait.until(
        ec.presence_of_element_located(
            (By.XPATH, "//li[contains(@class,'reply')][contains(.,'345')]")
        )
    )
    # The reply can arrive on the event stream before the page sends the
    # message again (it waits 250 ms after the dropped connection): wait for it.
    wait.until(lambda b: len(b.execute_script("return window.messageKeys")) >= 2)
    keys = browser.execute_script("return window.messageKeys")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1], keys  # sent again, same key

    session = browser.execute_script("return window.location.hash.slice(1)")
    view = httpx.get(
        f"{web_api.url}/api/sessions/{session}",
        headers={"Authorization": f"Bearer {web_api.token}"},
        timeout=30,
    ).json()
    assert [turn["user"] for turn in view["history"]] == ["What is 15 * 23?"]
    assert len(browser.find_elements(By.CSS_SELECTOR, ".bubble.user")) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, ".reply")) == 1
