#!/usr/bin/env bash
# The main job on the embedded default: start the local model server, ingest data/, serve the API on
# 127.0.0.1:8000, and print one sample question's answer with its citations and provenance.
# The API keeps serving until Ctrl-C (set KGRAG_RUN_ONCE=1 to stop after the sample answer).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 RAGAS_DO_NOT_TRACK=true TOKENIZERS_PARALLELISM=false
STORE="${KGRAG_STORE_DIR:-store}"
MODEL_PORT="${KGRAG_MODEL_SERVER__PORT:-8080}"
API_PORT="${KGRAG_API__PORT:-8000}"
QUESTION="${KGRAG_SAMPLE_QUESTION:-Who leads the finance team that approves expenses above 500 euros?}"
KGRAG=.venv/bin/kgrag
LOGS="$STORE/logs"
mkdir -p "$LOGS"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_for() { # url, seconds, what, log
  for _ in $(seq 1 "$2"); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 1
  done
  echo "error: $3 did not come up at $1; see $4" >&2
  tail -n 20 "$4" >&2 || true
  exit 1
}

$KGRAG model prepare
if curl -fsS -o /dev/null "http://127.0.0.1:$MODEL_PORT/v1/models" 2>/dev/null; then
  echo "model server already running on 127.0.0.1:$MODEL_PORT"
else
  echo "starting the model server on 127.0.0.1:$MODEL_PORT (log: $LOGS/model-server.log)"
  $KGRAG model serve --port "$MODEL_PORT" >"$LOGS/model-server.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$MODEL_PORT/v1/models" 180 "model server" "$LOGS/model-server.log"
fi
export KGRAG_LLM_BASE_URL="http://127.0.0.1:$MODEL_PORT/v1"

$KGRAG ingest data --store "$STORE" || [ $? -eq 3 ]

echo "starting the API on 127.0.0.1:$API_PORT (log: $LOGS/api.log; OpenAPI at http://127.0.0.1:$API_PORT/docs)"
$KGRAG serve --store "$STORE" --host 127.0.0.1 --port "$API_PORT" >"$LOGS/api.log" 2>&1 &
api_pid=$!
pids+=($api_pid)
wait_for "http://127.0.0.1:$API_PORT/healthz" 120 "API" "$LOGS/api.log"

echo
echo "POST /v1/answer {\"question\": \"$QUESTION\"}"
.venv/bin/python - "$API_PORT" "$QUESTION" <<'PYEOF'
import json, sys, httpx
port, question = sys.argv[1], sys.argv[2]
r = httpx.post(f"http://127.0.0.1:{port}/v1/answer", json={"question": question}, timeout=1800)
body = r.json()
print(json.dumps(body, indent=2))
if r.status_code != 200:
    sys.exit(1)
p = body["provenance"]
print(f"\nanswer: {body['answer']}")
for n, c in enumerate(body["citations"], 1):
    print(f"  [{n}] {c['source']} chars {c['start']}-{c['end']}")
print(f"gate: {p['gate']['decision']} {p['gate']['scores']}; prompt {p['prompt']['name']} v{p['prompt']['version']}; model {p['model']}")
PYEOF

if [ "${KGRAG_RUN_ONCE:-0}" = "1" ]; then exit 0; fi
echo
echo "serving on http://127.0.0.1:$API_PORT (Ctrl-C to stop)"
wait "$api_pid"
