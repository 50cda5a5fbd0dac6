#!/usr/bin/env bash
# A real container engine for the container runner's tests (../shared/docs/containers.md).
#
#   test/setup/containers.sh start DIR   installs what is missing, builds the test image, starts the
#                                        engine's API on DIR/engine.sock and prints the variables the
#                                        tests read, as shell `export` lines on stdout
#   test/setup/containers.sh stop DIR [--clean]
#                                        stops that engine; --clean first removes every container
#                                        of the tests (label suite=dispenserd-tests), on any engine
#                                        sharing the machine's storage (the end of ./run_tests)
#
# The engine is rootful podman serving the Docker-compatible API, unless DISPENSERD_TEST_DOCKERD=1
# asks for Debian's docker.io dockerd instead. Installing runs once (apt-get update, then
# apt-get install); when everything is there already, start takes well under a second.
# If the packages cannot be installed, start prints DISPENSERD_TEST_ENGINE_SKIP with the reason
# and exits 0: the container tests then skip and say why.
set -euo pipefail

IMAGE_REPO=localhost/busybox
IMAGE_TAG=test
IMAGE="$IMAGE_REPO:$IMAGE_TAG"
# Test containers carry this label (test lanes set it); stop removes them whatever their state.
TEST_LABEL=suite=dispenserd-tests

log() { echo "containers.sh: $*" >&2; }

skip() {
  log "container tests will skip: $1"
  printf "export DISPENSERD_TEST_ENGINE_SKIP=%q\n" "$1"
  exit 0
}

want_dockerd() { [[ ${DISPENSERD_TEST_DOCKERD:-} == 1 ]]; }

# Installs the packages that are missing (another apt-get may hold the lock for a while).
install_packages() {
  local missing=()
  command -v runc >/dev/null || missing+=(runc)
  # The test image needs the static build: a dynamic busybox finds no libc in a bare root.
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v curl >/dev/null || missing+=(curl)
  if want_dockerd; then
    command -v dockerd >/dev/null || missing+=(docker.io)
  else
    command -v podman >/dev/null || missing+=(podman)
  fi
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -qq) try
  # Another apt-get on the machine may hold the lists' lock for a while: try again before giving up.
  for try in 1 2 3 4 5 6; do
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >&2 && break
    ((try == 6)) && skip "apt-get update failed (cannot install ${missing[*]})"
    sleep 10
  done
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
    skip "apt-get install ${missing[*]} failed"
  fi
}

# podman's defaults fail on these machines (nofile limit above the hard limit, crun and the hybrid
# cgroup layout); this drop-in also applies to containers created through the API.
configure_podman() {
  local conf=/etc/containers/containers.conf.d/50-dispenserd-tests.conf
  [[ -f $conf ]] && return 0
  mkdir -p "$(dirname "$conf")"
  cat >"$conf" <<'TOML'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
TOML
}

# A root file system of static busybox and its applets, as a tar file in $1.
make_rootfs_tar() {
  local tar=$1 rootfs
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,tmp,etc,root}
  chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -cf "$tar" .
  rm -rf "$rootfs"
}

ping_engine() { curl -sf --max-time 2 --unix-socket "$1" http://engine/_ping >/dev/null 2>&1; }

wait_for_engine() {
  local socket=$1 pid=$2 i
  for ((i = 0; i < 300; i++)); do
    ping_engine "$socket" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

start_podman() {
  local dir=$1
  configure_podman
  if ! podman image exists "$IMAGE"; then
    log "building $IMAGE from busybox-static"
    make_rootfs_tar "$dir/rootfs.tar"
    podman import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$dir/rootfs.tar" "$IMAGE" >"$dir/import.log" 2>&1 || { cat "$dir/import.log" >&2; skip "podman import of the test image failed"; }
    rm -f "$dir/rootfs.tar"
  fi
  setsid podman system service --time=0 "unix://$dir/engine.sock" >"$dir/engine.log" 2>&1 </dev/null &
  echo $! >"$dir/engine.pid"
}

start_dockerd() {
  local dir=$1
  mkdir -p "$dir/docker-data" "$dir/docker-exec"
  # --live-restore: containers outlive a dockerd restart, as they outlive podman's service.
  setsid dockerd --host "unix://$dir/engine.sock" --iptables=false --ip6tables=false --bridge=none --ip-masq=false --live-restore \
    --data-root "$dir/docker-data" --exec-root "$dir/docker-exec" --pidfile "$dir/dockerd.pid" >"$dir/engine.log" 2>&1 </dev/null &
  echo $! >"$dir/engine.pid"
}

# dockerd starts with no images: import the test image through the API.
import_into_dockerd() {
  local dir=$1
  curl -sf --unix-socket "$dir/engine.sock" "http://engine/images/$IMAGE/json" >/dev/null 2>&1 && return 0
  make_rootfs_tar "$dir/rootfs.tar"
  curl -sf --unix-socket "$dir/engine.sock" -X POST -H 'Content-Type: application/x-tar' --data-binary "@$dir/rootfs.tar" \
    "http://engine/images/create?fromSrc=-&repo=$IMAGE_REPO&tag=$IMAGE_TAG&changes=ENV%20PATH%3D%2Fbin&changes=CMD%20%5B%22%2Fbin%2Fsh%22%5D" >/dev/null
  rm -f "$dir/rootfs.tar"
}

start() {
  local dir=$1
  mkdir -p "$dir"
  if [[ -f $dir/engine.pid ]] && kill -0 "$(cat "$dir/engine.pid")" 2>/dev/null && ping_engine "$dir/engine.sock"; then
    log "engine already running on $dir/engine.sock"
  else
    install_packages
    rm -f "$dir/engine.sock"
    if want_dockerd; then start_dockerd "$dir"; else start_podman "$dir"; fi
    if ! wait_for_engine "$dir/engine.sock" "$(cat "$dir/engine.pid")"; then
      tail -n 20 "$dir/engine.log" >&2 || true
      skip "the engine did not answer on $dir/engine.sock (log: $dir/engine.log)"
    fi
    if want_dockerd; then import_into_dockerd "$dir"; fi
  fi
  echo "export DISPENSERD_TEST_ENGINE=unix://$dir/engine.sock"
  echo "export DISPENSERD_TEST_IMAGE=$IMAGE"
  echo "export DISPENSERD_TEST_ENGINE_KIND=$(want_dockerd && echo docker || echo podman)"
}

stop() {
  local dir=$1 clean=${2:-} pid
  [[ -f $dir/engine.pid ]] || return 0
  pid=$(cat "$dir/engine.pid")
  if [[ $clean == --clean ]] && ping_engine "$dir/engine.sock"; then
    # Containers outlive the API service: remove the tests' own before stopping it.
    local ids
    ids=$(curl -sf --unix-socket "$dir/engine.sock" -G http://engine/containers/json --data-urlencode all=1 \
      --data-urlencode "filters={\"label\":[\"$TEST_LABEL\"]}" | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 || true)
    for id in $ids; do curl -sf --unix-socket "$dir/engine.sock" -X DELETE "http://engine/containers/$id?force=1" >/dev/null || true; done
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  # dockerd leaves its data root bind-mounted on itself (and, with live-restore, the mounts of its
  # containers): unmount what nothing uses any more, deepest first, so the directory can go.
  if [[ -d $dir/docker-data ]]; then
    local target
    while read -r target; do umount "$target" 2>/dev/null || true; done < <(findmnt -rn -o TARGET | grep "^$dir/" | sort -r)
  fi
  rm -f "$dir/engine.pid" "$dir/engine.sock"
}

case "${1:-}" in
  start) start "${2:?start needs a directory}" ;;
  stop) stop "${2:?stop needs a directory}" "${3:-}" ;;
  *) echo "usage: $0 start DIR | stop DIR [--clean]" >&2; exit 2 ;;
esac
