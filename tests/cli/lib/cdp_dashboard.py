#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol to check the live dashboard.

usage: cdp_dashboard.py CHROMIUM URL OUTDIR WAIT_SECONDS

Loads URL, takes a screenshot of the memory chart, waits WAIT_SECONDS (longer than the page's
refresh period), takes a second one, and checks: no console error, no uncaught exception and no
CSP or network error while loading and refreshing; the live bar says it updated; the charts'
SVG changed in the DOM; the two screenshots differ. Exit 0 when all hold, 1 otherwise (the reason
on stdout). Standard library only: a minimal WebSocket client (RFC 6455, client frames masked).
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class WebSocket:
    def __init__(self, url, timeout=30):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise OSError("websocket handshake refused: " + head.split(b"\r\n", 1)[0].decode())
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise OSError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise OSError("websocket closed by the browser")
            if opcode in (0x9, 0xA):  # ping/pong: not used by DevTools
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.errors = []
        self.events = []

    def _note(self, msg):
        method = msg.get("method", "")
        p = msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.error: " + json.dumps(p.get("args", []))[:300])
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}"[:300])
        self.events.append(method)

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._note(msg)

    def pump(self, seconds):
        """Handles events for `seconds` of real time."""
        end = time.time() + seconds
        while time.time() < end:
            self.ws.sock.settimeout(max(0.05, end - time.time()))
            try:
                self._note(json.loads(self.ws.recv()))
            except socket.timeout:
                pass
        self.ws.sock.settimeout(30)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")


def launch(chromium, profile):
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--window-size=1400,1200", f"--user-data-dir={profile}",
            "--remote-debugging-port=0", "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(profile, "DevToolsActivePort")
    for _ in range(600):
        if os.path.exists(port_file):
            lines = open(port_file).read().split()
            if len(lines) >= 2:
                return proc, int(lines[0])
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chromium did not open its DevTools port within 60 s")


def page_ws(port):
    for _ in range(100):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        if targets:
            return targets[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise RuntimeError("no page target")


CHART_SVG = "Array.from(document.querySelectorAll('section .chart svg')).map(function(s){return s.outerHTML;}).join('')"
CLIP = ("(function(){var c=document.querySelector('#memory .chart');var r=c.getBoundingClientRect();"
        "return {x:r.left+window.scrollX,y:r.top+window.scrollY,width:r.width,height:r.height};})()")


def check(chromium, url, outdir, wait):
    profile = tempfile.mkdtemp(prefix="perfopt-cdp-")
    proc = None
    try:
        proc, port = launch(chromium, profile)
        page = Page(WebSocket(page_ws(port)))
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            page.call(domain)
        page.call("Page.navigate", url=url)
        deadline = time.time() + 60
        while "Page.loadEventFired" not in page.events and time.time() < deadline:
            page.pump(0.2)
        if "Page.loadEventFired" not in page.events:
            return "the dashboard did not load within 60 s"
        page.pump(1.0)
        svgs_before = page.eval(CHART_SVG) or ""
        if svgs_before.count("<svg") < 3:
            return f"only {svgs_before.count('<svg')} charts on the dashboard"
        clip = page.eval(CLIP)
        clip["scale"] = 1
        shot1 = base64.b64decode(page.call("Page.captureScreenshot", format="png", clip=clip,
                                           captureBeyondViewport=True)["data"])
        page.pump(wait)
        bar = page.eval("document.getElementById('po-live').textContent") or ""
        svgs_after = page.eval(CHART_SVG) or ""
        clip = page.eval(CLIP)
        clip["scale"] = 1
        shot2 = base64.b64decode(page.call("Page.captureScreenshot", format="png", clip=clip,
                                           captureBeyondViewport=True)["data"])
        for i, shot in ((1, shot1), (2, shot2)):
            with open(os.path.join(outdir, f"dashboard_{i}.png"), "wb") as f:
                f.write(shot)
        if page.errors:
            return "console errors: " + " | ".join(page.errors[:5])
        if "updated" not in bar:
            return f"the live bar did not report an update: {bar!r}"
        if svgs_after == svgs_before:
            return "the charts did not change in the DOM"
        if shot1 == shot2:
            return "the two screenshots of the memory chart are identical"
        if len(shot1) < 2000:
            return f"the screenshot is suspiciously small ({len(shot1)} bytes)"
        return None
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    try:
        problem = check(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
    except Exception as e:  # a protocol failure is a test failure with its reason
        problem = f"{type(e).__name__}: {e}"
    if problem:
        print(problem)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
