#!/usr/bin/env bash
# `make demo`: the whole workflow on the embedded SQLite default, then the web app.
#   1 assess two example patients   2 build the demo registry   3 plan (omalizumab, desensitization, SCIT)
#   4 record care and what is due   5 the cohort report         6 serve the web app (DEMO_SERVE=0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."
IP=${IMMUNOPLAN:-.venv/bin/immunoplan}
DB=${DEMO_DB:-var/demo.sqlite}
OUT=${DEMO_OUT:-var/demo-report}
PLANS=${DEMO_PLANS:-var/demo-plans}
mkdir -p "$(dirname "$DB")" "$OUT" "$PLANS"

step() { printf '\n\033[1;36m== %s ==\033[0m\n' "$*"; }

step "1. Assess: a low-risk adult and a high-risk adolescent"
"$IP" demo-tour

step "2. Registry: two synthetic cohorts calibrated to seeds 000 and 001 ($DB)"
"$IP" demo --db "$DB" --replace

step "3a. Plan: omalizumab dose from the US label table"
"$IP" omalizumab dose --indication asthma --region us --age 30 --weight-kg 65 --total-ige 250

step "3b. Plan: omalizumab concurrent with SCIT (calendar also written as .ics)"
"$IP" omalizumab schedule --kind concurrent-scit --start 2027-01-04 --age 30 --weight-kg 65 --total-ige 250 \
  --weeks 12 --ics "$PLANS/omalizumab.ics"

step "3c. Plan: ceftazidime 2 g rapid desensitization, 3 bags / 12 steps (pharmacy + nursing sheet PDF)"
"$IP" desensitization --drug ceftazidime --dose-mg 2000 --bag-volume-ml 250 --final-rate-ml-h 80 --bags 3 \
  --start 09:00 --stock-mg-ml 100 --sheet "$PLANS/desensitization-ceftazidime.pdf"

step "3d. Plan: Alutard SQ house dust mite cluster schedule (injection record PDF)"
"$IP" scit schedule --product alutard-sq-hdm --regimen cluster --start 2027-01-04 --start-time 09:00 \
  --sheet "$PLANS/scit-cluster.pdf"

step "4a. Treat and record: a new patient, a cluster course from today, its first injection now (clinic time)"
PY=${PYTHON_BIN:-.venv/bin/python}
json_id() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }
clinic_date() { if [ -n "${IMMUNOPLAN_TIMEZONE:-}" ]; then TZ="$IMMUNOPLAN_TIMEZONE" date "$@"; else date "$@"; fi; }
PID=$("$IP" patient add --db "$DB" --mrn DEMO-100234 --name "Kari Nordmann" --birth-date 1988-04-02 \
  --sex female --weight-kg 64 --by demo-clinician --json | json_id)
CID=$("$IP" course plan --db "$DB" --patient "$PID" --kind scit --product alutard-sq-hdm --regimen cluster \
  --start "$(clinic_date +%F)" --by demo-clinician --json | json_id)
VID=$("$IP" vial add --db "$DB" --patient "$PID" --product alutard-sq-hdm --concentration 1 --lot DEMO-LOT-1 \
  --expiry "$(clinic_date -d '+180 days' +%F)" --by demo-nurse --json | json_id)
"$IP" vial label --db "$DB" --patient "$PID" --layout a4 --out "$PLANS/vial-labels.pdf"
"$IP" injection next --db "$DB" --course "$CID" --vial "$VID"
"$IP" injection record --db "$DB" --course "$CID" --dose-ml 0.1 --vial "$VID" \
  --check fever_infection=no --check asthma_worse=no --check beta_blocker=no \
  --given-at "$(clinic_date +%FT%H:%M)" --by demo-nurse

step "4b. Front desk: injections due or late, with what the missed-dose rule does to the next dose"
"$IP" due --db "$DB" --window-days 3
"$IP" due --db "$DB" --csv "$PLANS/late-shots.csv" >/dev/null

step "5. Analyse: the seed studies' analyses reproduced from the registry"
"$IP" report --db "$DB" --out "$OUT"

printf '\nPlans and sheets: %s/\nCohort report:    %s/report.html (also report.pdf, tables.xlsx, figures)\n' \
  "$PLANS" "$OUT"

if [ "${DEMO_SERVE:-1}" != "0" ]; then
  step "6. Web app (Ctrl-C to stop)"
  exec "$IP" serve --db "$DB" --host "${DEMO_HOST:-127.0.0.1}" --port "${DEMO_PORT:-8000}" --demo-accounts
fi
