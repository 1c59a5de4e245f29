"""Write a copy of config/nginx.conf with other values: the mirror's root, the listen address,
the feedsvc upstream, and (with --prefix) pid, logs and temp folders in one folder, so an
unprivileged or throw-away nginx can run it (tests, bench/mirror.py).

    python tools/nginx_conf.py --root /srv/mirror --listen 127.0.0.1:8081 \
        --upstream 127.0.0.1:8080 --prefix /tmp/ngx > /tmp/ngx/nginx.conf
    nginx -c /tmp/ngx/nginx.conf -g 'daemon off;'
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "config" / "nginx.conf"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _set(text: str, directive: str, value: str) -> str:
    pattern = re.compile(rf"^(\s*){re.escape(directive)}\s[^;]*;", re.M)
    text, n = pattern.subn(lambda m: f"{m.group(1)}{directive} {value};", text)
    if n == 0:
        raise ValueError(f"config/nginx.conf has no {directive!r} line to set")
    return text


def render(*, root: Path, listen: str, upstream: str, prefix: Path | None = None,
           user: str | None = None, template: str | None = None) -> str:
    text = CONF.read_text(encoding="utf-8") if template is None else template
    text = _set(text, "root", str(root))
    text = _set(text, "listen", listen)
    text = re.sub(r"(upstream feedsvc \{\s*server )[^;]*;", rf"\g<1>{upstream};", text)
    if prefix is not None:
        text = _set(text, "pid", str(prefix / "nginx.pid"))
        text = _set(text, "error_log", f"{prefix / 'error.log'} warn")
        text = _set(text, "access_log", "off")
        for name in TEMP_PATHS:
            text = _set(text, f"{name}_temp_path", str(prefix / f"{name}_temp"))
    if user is None:
        user = "root" if os.geteuid() == 0 else ""
    if user:
        text = _set(text, "user", user)
    else:  # not root: nginx cannot change user, and warns about the directive
        text = re.sub(r"^\s*user\s[^;]*;\n", "", text, flags=re.M)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the mirror folder")
    parser.add_argument("--listen", default="127.0.0.1:8081")
    parser.add_argument("--upstream", default="127.0.0.1:8080", help="host:port of feedsvc")
    parser.add_argument("--prefix", type=Path, help="folder for pid, logs and temp files")
    parser.add_argument("--user", help="worker user (default: root when run as root)")
    args = parser.parse_args()
    print(render(root=args.root.resolve(), listen=args.listen, upstream=args.upstream,
                 prefix=args.prefix.resolve() if args.prefix else None, user=args.user), end="")


if __name__ == "__main__":
    main()
