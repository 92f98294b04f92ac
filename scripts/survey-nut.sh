#!/usr/bin/env bash
# Runs emit over NUT device dumps (dummy-ups `.dev` files, e.g. the NUT Devices Dumps Library) the
# way a site would meet them: each dump served by its own dummy-ups behind one upsd on 127.0.0.1,
# then `emit facility collect` for one 2 s window per UPS. Prints what emit reports (method,
# tier, average watts) or its refusal beside what the dump says. It judges nothing: read it.
# usage: scripts/survey-nut.sh [DIR_OF_DEV_FILES] [PATH_TO_EMIT]   (root: dummy-ups and upsd run as root)
set -u
DIR=${1:-../shared/real/nut}
EMIT=${2:-.build/debug/emit}
[ -x "$EMIT" ] || { echo "no emit binary at $EMIT (swift build)" >&2; exit 2; }
[ -x /lib/nut/upsd ] || { echo "needs NUT: apt-get install nut-server nut-client" >&2; exit 2; }
PORT=${NUT_SURVEY_PORT:-13499}
T=$(mktemp -d)
export NUT_CONFPATH=$T/etc NUT_STATEPATH=$T/state NUT_ALTPIDPATH=$T/state
cleanup() {
  for f in "$T"/state/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/etc" "$T/state" && chmod 700 "$T/state"
echo "MODE=standalone" >"$T/etc/nut.conf"
echo "LISTEN 127.0.0.1 $PORT" >"$T/etc/upsd.conf"
: >"$T/etc/upsd.users"
: >"$T/etc/ups.conf"
names=()
i=0
for dev in "$DIR"/*.dev; do
  i=$((i + 1)); name="u$i"; names+=("$name:$(basename "$dev")")
  cp "$dev" "$T/$name.dev"
  printf '[%s]\n  driver = dummy-ups\n  port = %s\n  mode = dummy-once\n' "$name" "$T/$name.dev" >>"$T/etc/ups.conf"
  /lib/nut/dummy-ups -a "$name" -u root </dev/null >>"$T/driver.log" 2>&1
done
/lib/nut/upsd -u root </dev/null >"$T/upsd.log" 2>&1
sleep 2
printf '%-58s %-18s %-10s %10s  %s\n' dump method tier "avg W" "what the dump says (ups.realpower / load x nominal / energy)"
for entry in "${names[@]}"; do
  name=${entry%%:*}; file=${entry#*:}
  printf '{"facility_id":"lab","region":"x","meters":[{"id":"%s","source":"ups","class":"ups","pue_applied":false,"host":"127.0.0.1","port":%s,"ups":"%s"}]}' \
    "$name" "$PORT" "$name" >"$T/c.json"
  rm -f "$T/e"
  timeout 30 "$EMIT" facility collect --config "$T/c.json" --interval 250ms --window 2s --windows 1 --out "$T/e" >/dev/null 2>"$T/err"
  says=$(grep -E '^(ups\.realpower|ups\.load|ups\.realpower\.nominal|experimental\.output\.energy|input\.realpower):' "$DIR/$file" | tr '\t' ' ' | paste -sd ';' -)
  if [ -s "$T/e" ]; then
    python3 - "$T/e" "$file" "$says" <<'PY'
import json, sys
e = json.loads(open(sys.argv[1]).readline())
seconds = 2.0
m = (e.get("measurement") or {}).get("method", "-")
print(f"{sys.argv[2]:58} {m:18} {e['energy_provenance']:10} {e['energy_joules'] / seconds:10.2f}  {sys.argv[3]}")
PY
  else
    printf '%-58s refused: %s\n%58s  %s\n' "$file" "$(grep -m1 'not metered\|none of' "$T/err" | sed 's/^ *//')" "" "$says"
  fi
done
