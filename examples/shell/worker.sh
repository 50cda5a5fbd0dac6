#!/usr/bin/env bash
# A consumer loop: worker.sh   (settings in the environment: LANE, LEASE=60, RETRY_DELAY=0, MAX_JOBS=0)
#
# Takes jobs under a lease, works on each, and acks it when the work succeeded or releases it (to be
# tried again after RETRY_DELAY seconds) when it failed. A job whose worker dies is not lost: its
# lease runs out and the daemon hands it to another worker. While the daemon cannot be reached (not
# started yet, restarting) it waits and tries again, up to 5 s apart. Needs curl and jq.
#
# The "work" here is a stand-in: a message starting with "fail-once" fails the first time this
# worker sees it. Replace work() with yours: it gets the message as $1, and on failure returns
# non-zero with the reason in $why (it runs in this shell, not a subshell, so it can keep state).
set -uo pipefail
url=${DISPENSERD_URL:-http://127.0.0.1:8282}
lane=${LANE:-main} lease=${LEASE:-60} retry_delay=${RETRY_DELAY:-0} max_jobs=${MAX_JOBS:-0}
auth=()
[[ -n ${DISPENSERD_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $DISPENSERD_TOKEN")
[[ -n ${DISPENSERD_CA:-} ]] && auth+=(--cacert "$DISPENSERD_CA")   # https:// with a self-signed certificate
declare -A seen=()

work() {
  if [[ $1 == fail-once* && -z ${seen[$1]:-} ]]; then
    seen[$1]=1
    why="failed on the first try"
    return 1
  fi
}

# POSTs $2 to endpoint $1; prints the reply. Fails (status 7) when the daemon cannot be reached.
call() {
  curl -sS --max-time 20 "${auth[@]}" "$url$1" -d "$2"
}

stopping=0
trap 'stopping=1' TERM INT
acked=0 pause=0.2
while (( !stopping && (max_jobs == 0 || acked < max_jobs) )); do
  if ! job=$(call /receive_block "$(jq -cn --arg lane "$lane" --argjson lease "$lease" '{lane: $lane, lease: $lease, timeout: 5}')" 2>&1); then
    # Not started yet, restarting, or gone for a while: a job leased before the break comes back
    # to the lane when its lease runs out.
    echo "cannot reach dispenserd ($job); trying again in $pause s"
    sleep "$pause"
    pause=$(awk -v p="$pause" 'BEGIN { p *= 2; print (p > 5 ? 5 : p) }')
    continue
  fi
  pause=0.2
  [[ $(jq -r .code <<<"$job") == 2 ]] && continue   # no job within the timeout
  if [[ $(jq -r .status <<<"$job") != ok ]]; then
    echo "worker: $(jq -r .message <<<"$job")" >&2
    exit 1
  fi
  num=$(jq -r .job_num <<<"$job") message=$(jq -r .message <<<"$job")
  lease_ref=$(jq -c '{hash, lease_token}' <<<"$job")
  if ! work "$message"; then
    call /release "$(jq -c --argjson delay "$retry_delay" '. + {delay: $delay}' <<<"$lease_ref")" >/dev/null
    echo "released job $num ($message): $why"
    continue
  fi
  reply=$(call /ack "$lease_ref")
  if [[ $(jq -r .status <<<"$reply") != ok ]]; then
    # Code 9: the lease ran out before the ack; the job went back and may run again.
    echo "could not ack job $num: $(jq -r .message <<<"$reply")"
    continue
  fi
  acked=$((acked + 1))
  echo "done job $num ($message)"
done
