# Sourced by the naive Airflow scripts: polls Airflow's health JSON at $1 until every component
# named in $2 (space-separated) says "healthy", as a person would with curl; gives up after 180 s
# with the message $3.
await_airflow_healthy() {
  local url=$1 want=$2 body
  for _ in $(seq 1800); do
    if body=$(curl -sf --max-time 3 "$url" 2>/dev/null) && python3 -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(0 if all((h.get(k) or {}).get("status") == "healthy" for k in sys.argv[1:]) else 1)
' $want <<<"$body"; then
      return 0
    fi
    sleep 0.1
  done
  echo "$3: not healthy after 180 s" >&2
  return 1
}
