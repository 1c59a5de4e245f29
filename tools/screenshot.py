"""Screenshot an entry page in headless Chromium (Debian `chromium`), to see what a reader of
the site sees: highlighted code, MathML formulas, images.

    python tools/screenshot.py [--entry large-model/flash-attention] [--out entry.png]

Serves the bundled examples on a free 127.0.0.1 port with a throw-away store, then runs
chromium --headless --screenshot against the entry page.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedsvc.config import build_config  # noqa: E402
from feedsvc.web import create_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry", default="large-model/flash-attention")
    parser.add_argument("--out", type=Path, default=Path("entry.png"))
    parser.add_argument("--size", default="1100,1900")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        config = build_config({
            "site": {"base_url": f"http://127.0.0.1:{port}/", "timezone": "Asia/Shanghai"},
            "sources": [{"name": "notes", "path": str(REPO / "examples" / "notes")}],
            "store": {"data_dir": tmp}}, base_dir=REPO)
        app = create_app(config)
        app.extensions["feedsvc"].scanner.run()
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                            f"--user-data-dir={tmp}/chromium", f"--window-size={args.size}",
                            f"--screenshot={args.out.resolve()}",
                            f"http://127.0.0.1:{port}/entries/{args.entry}"],
                           check=True, timeout=120, capture_output=True)
        finally:
            server.shutdown()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
