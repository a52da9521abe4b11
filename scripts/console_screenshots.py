"""Screenshots of the console for docs/: the alarm list and the first alarm's view.

    python scripts/console_screenshots.py http://127.0.0.1:8080 demo PASSWORD docs/

Drives Debian's chromium through Playwright (executable_path; no browser download). Used on the
console that scripts/demo.sh starts; it acknowledges the second alarm of the list on the way.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(url: str, user: str, password: str, out: str) -> int:
    folder = Path(out)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.goto(f"{url}/login")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#alarms tbody tr[data-id]", timeout=60_000)
        page.keyboard.press("j")  # the keyboard selection moves to the second row ...
        page.keyboard.press("a")  # ... which is acknowledged, so the list shows two states
        page.wait_for_selector("#alarms tr.state-acknowledged", timeout=10_000)
        page.screenshot(path=str(folder / "console-alarm-list.png"))
        first = page.evaluate("() => document.querySelector('#alarms tbody tr[data-id]').dataset.id")
        page.goto(f"{url}/alarms/{first}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not page.evaluate(
                "() => document.getElementById('snapshot').naturalWidth > 0 && document.getElementById('clip').readyState >= 2"):
            time.sleep(0.2)
        time.sleep(1.5)  # a moment of playback, so the frame shown is not the first
        page.screenshot(path=str(folder / "console-alarm-view.png"))
        browser.close()
    print(f"wrote {folder / 'console-alarm-list.png'} and {folder / 'console-alarm-view.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
