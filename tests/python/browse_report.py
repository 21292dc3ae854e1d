"""Opens a report in headless Chromium through the DevTools protocol and
prints, as JSON, what rendered: sizes of the map and histogram drawings,
the numbers of the tables as the browser reads them from the DOM, console
errors and exceptions, and every request that was not a file: or data: URL.
Saves a full-page screenshot.

usage: browse_report.py REPORT.html SCREENSHOT.png
"""

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

CHECKS = r"""
(() => {
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect(); return {w: r.width, h: r.height}; };
  const rows = (selector) => Array.from(document.querySelectorAll(selector + ' tbody tr')).map(
    (tr) => Array.from(tr.children).map((td) => td.dataset.value !== undefined ? Number(td.dataset.value) : td.textContent));
  const mapSvg = document.querySelector('#map svg');
  return JSON.stringify({
    title: document.title,
    rows: Number(document.querySelector('#rows').dataset.value),
    map: mapSvg ? Object.assign(box(mapSvg), {rects: mapSvg.querySelectorAll('rect').length,
                                              texts: mapSvg.querySelectorAll('text').length,
                                              lines: mapSvg.querySelectorAll('polyline, path, line').length}) : null,
    beams: rows('#beams'),
    strengths: rows('#strengths'),
    granules: rows('#granules'),
    months: rows('#months'),
    histograms: Array.from(document.querySelectorAll('.histogram')).map((figure) => {
      const cells = Array.from(figure.querySelectorAll('.stats td'));
      const svg = figure.querySelector('svg');
      return Object.assign(box(svg), {
        variable: figure.dataset.variable,
        bins: figure.dataset.bins.split(' ').map(Number),
        bars: svg.querySelectorAll('rect').length,
        count: Number(cells[0].dataset.value),
        nulls: Number(cells[1].dataset.value),
        min: cells[2].dataset.value === '' ? null : Number(cells[2].dataset.value),
        max: cells[3].dataset.value === '' ? null : Number(cells[3].dataset.value),
      });
    }),
    failed: document.querySelectorAll('#failed tbody tr').length,
    manifest: (document.querySelector('#manifest') || {}).textContent || '',
    scripts: document.querySelectorAll('script').length,
  });
})()
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no chromium on PATH (Debian package: chromium)")


def main():
    report, screenshot = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
    profile = tempfile.mkdtemp(prefix="icesat2-chromium-")
    browser = subprocess.Popen(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--remote-debugging-port=0", "--remote-allow-origins=*",
         f"--user-data-dir={profile}", "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = pathlib.Path(profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or browser.poll() is not None:
                sys.exit("chromium did not start")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        next_id = [0]
        events = []

        def call(method, **params):
            next_id[0] += 1
            ws.send(json.dumps({"id": next_id[0], "method": method, "params": params}))
            while True:
                message = json.loads(ws.recv())
                if message.get("id") == next_id[0]:
                    if "error" in message:
                        sys.exit(f"{method}: {message['error']}")
                    return message["result"]
                events.append(message)

        for domain in ("Page", "Runtime", "Log", "Network"):
            call(f"{domain}.enable")
        call("Page.navigate", url=report.as_uri())
        deadline = time.time() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in events):
            if time.time() > deadline:
                sys.exit("the report did not load")
            events.append(json.loads(ws.recv()))
        result = json.loads(call("Runtime.evaluate", expression=CHECKS, returnByValue=True)["result"]["value"])
        shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        pathlib.Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        errors = []
        requests = []
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", "error"))
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:")):
                    requests.append(url)
        result["errors"] = errors
        result["network"] = requests
        print(json.dumps(result))
        ws.close()
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
