#!/usr/bin/env bash
# Queues each argument as a job: producer.sh MESSAGE...   (LANE=video producer.sh ... for a lane)
# Needs curl and jq. The daemon is $DISPENSERD_URL (default http://127.0.0.1:8282), its token
# $DISPENSERD_TOKEN.
set -euo pipefail
url=${DISPENSERD_URL:-http://127.0.0.1:8282}
auth=()
[[ -n ${DISPENSERD_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $DISPENSERD_TOKEN")
[[ -n ${DISPENSERD_CA:-} ]] && auth+=(--cacert "$DISPENSERD_CA")   # https:// with a self-signed certificate

for message in "$@"; do
  # jq builds the body, so any message (quotes, newlines) is sent as it is.
  body=$(jq -cn --arg message "$message" --arg lane "${LANE:-}" '{message: $message} + (if $lane == "" then {} else {lane: $lane} end)')
  reply=$(curl -sS "${auth[@]}" "$url/schedule" -d "$body")
  if [[ $(jq -r .status <<<"$reply") != ok ]]; then
    echo "producer: $(jq -r .message <<<"$reply")" >&2
    exit 1
  fi
  echo "queued job $(jq -r .job_num <<<"$reply"): $message"
done
