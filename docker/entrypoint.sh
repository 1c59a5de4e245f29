#!/bin/sh
# Image entrypoint: checks that the SQLite store folder is usable by the uid the container
# runs as and says what to do when it is not, then runs the command (`feedsvc serve`).
set -eu
umask 0002

data="${FEEDSVC_STORE_DATA_DIR:-/data}"
uid="$(id -u)"
gid="$(id -g)"
fail() {
    echo "feedsvc-entrypoint: $1" >&2
    echo "  fix: on the host, chown -R $uid:0 <that folder> (or chmod -R g+rwX it with group 0)," >&2
    echo "       or run the container as its owner: --user <owner uid>:0" >&2
    exit 1
}
case "${FEEDSVC_STORE_URL:-}" in
    "")  # the default SQLite store, $data/feedsvc.db
        if [ ! -d "$data" ]; then
            mkdir -p "$data" 2>/dev/null \
                || fail "store folder $data (FEEDSVC_STORE_DATA_DIR) is missing and cannot be created by uid $uid gid $gid"
        fi
        if [ ! -w "$data" ] || [ ! -x "$data" ]; then
            fail "store folder $data (FEEDSVC_STORE_DATA_DIR) is not writable by uid $uid gid $gid (it belongs to uid $(stat -c %u "$data") gid $(stat -c %g "$data"), mode $(stat -c %a "$data"))"
        fi
        for f in "$data/feedsvc.db" "$data/feedsvc.db-wal" "$data/feedsvc.db-shm"; do
            if [ -e "$f" ] && [ ! -w "$f" ]; then
                fail "store file $f is not writable by uid $uid gid $gid (it belongs to uid $(stat -c %u "$f") gid $(stat -c %g "$f"), mode $(stat -c %a "$f"))"
            fi
        done
        # SQLite creates its files mode 0644 (and its -wal/-shm like the database): made
        # here first, the database is group-writable, so any uid of group 0 can open it later.
        [ -e "$data/feedsvc.db" ] || : >"$data/feedsvc.db"
        ;;
esac
if [ -z "${FEEDSVC_SITE_BASE_URL:-}" ] && [ "${FEEDSVC_CONFIG:-}" = /app/config/feedsvc.toml ]; then
    echo "feedsvc-entrypoint: site.base_url is the config's http://127.0.0.1:8080/; set" \
         "FEEDSVC_SITE_BASE_URL to the public URL (before the first start: entry ids use its host)" >&2
fi
exec "$@"
