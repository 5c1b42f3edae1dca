#!/usr/bin/env bash
# The main job on the embedded default (SQLite): a demo department whose Maildir holds sample mail,
# one import cycle, then the tickets. Everything lives in demo/.state (recreated on every run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
STATE="$(pwd)/.state"
rm -rf "$STATE"
mkdir -p "$STATE/Maildir/new" "$STATE/Maildir/cur" "$STATE/Maildir/tmp"
export HELPDESK_HOME="$STATE"
unset HELPDESK_DATABASE_URL HELPDESK_SECRET_KEY

n=0
for f in mail/*.eml; do                      # deliver the sample mail, oldest first
  n=$((n + 1))
  cp "$f" "$STATE/Maildir/new/$((1700000000 + n)).M${n}P$$.demo"
done

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step helpdesk init
step helpdesk department add "Tech Help" --sender techhelp@district.example
step helpdesk department set-mailbox "Tech Help" --provider generic --protocol maildir \
     --path "$STATE/Maildir" --email techhelp@district.example
step helpdesk settings show
step helpdesk import
step helpdesk ticket list
step helpdesk ticket show 1
step helpdesk department status "Tech Help"
printf '\nMailbox now holds %s messages (all imported and removed).\n' "$(find "$STATE/Maildir/new" "$STATE/Maildir/cur" -type f | wc -l)"
printf 'Try: HELPDESK_HOME=%s helpdesk ticket show 5 --json\n' "$STATE"

# The web app on the same demo data, with a demo admin; Ctrl-C stops it. DEMO_WEB=0 skips it
# (e.g. in scripts that only want the import output above).
if [ "${DEMO_WEB:-1}" != "0" ]; then
  DEMO_PORT="${DEMO_PORT:-8080}"
  helpdesk user add admin@district.example --role admin --name "Demo Admin" >/dev/null
  printf 'demo-admin-password\n' | helpdesk user set-password admin@district.example --password-stdin >/dev/null
  printf '\n\033[1mWeb app: http://127.0.0.1:%s/  sign in as admin@district.example / demo-admin-password  (Ctrl-C stops it)\033[0m\n' "$DEMO_PORT"
  exec helpdesk web --host 127.0.0.1 --port "$DEMO_PORT"
fi
