#!/usr/bin/env bash
# Installs a SwarmBee worker as a systemd service on a 64-bit Raspberry Pi OS,
# Debian, Ubuntu or Jetson Linux (L4T) host, and starts it. Safe to run again:
# it installs a new release only when the source changed, keeps the settings and
# token already in /etc/swarmbee/worker.env unless told otherwise, and restarts
# the worker only when something changed.
#
#   sudo SWARMBEE_TOKEN=... scripts/install-worker.sh --join ws://192.168.1.10:7070
#   sudo scripts/install-worker.sh --source swarmbee-0.1.0.tgz --join ws://laptop.local:7070 \
#     --token-file /root/swarmbee.token --name pi-2
#
# Run with --help for every option; docs/DEPLOY.md has the whole walk-through.
set -euo pipefail

readonly MIN_NODE='20.19.0'
readonly UNIT_NAME='swarmbee-worker'
readonly SERVICE_USER='swarmbee'

usage() {
  cat <<'EOF'
Usage: sudo install-worker.sh --join ws://COORDINATOR:7070 [options]

Installs the SwarmBee worker under systemd (unit swarmbee-worker, user swarmbee,
settings in /etc/swarmbee/worker.env, shard cache in /var/cache/swarmbee).

Options (each also read from the environment variable in brackets):
  --join URL              coordinator's worker URL, ws://HOST:7070   [COORDINATOR_URL]
  --name NAME             worker name, unique in the cluster         [WORKER_NAME]
                          (default: the short host name)
  --advertise HOST        address other stages reach this board at   [ADVERTISE_ADDRESS]
                          (default: this host's address on the route to the coordinator)
  --listen HOST:PORT      data-plane listen address                  [LISTEN_ADDRESS]
                          (default: 0.0.0.0:7071)
  --execution-provider EP cpu (default) or cuda, tensorrt, ...       [EXECUTION_PROVIDER]
                          anything but cpu also installs the GPU drop-in
  --extra-args "ARGS"     more `swarmbee worker` flags, e.g. "--threads 3"  [EXTRA_ARGS]
  --token-file FILE       file holding the cluster token             [SWARMBEE_TOKEN holds
                          the token itself; never pass it as a flag: ps shows flags]
  --source PATH           a release tarball from scripts/pack-release.sh, or a built
                          checkout (npm ci && npm run build)         [SWARMBEE_SOURCE]
                          (default: the checkout this script is in)
  --install-dir DIR       where releases go (default: /opt/swarmbee) [INSTALL_DIR]
  --env-file FILE         where the settings go                      [ENV_FILE]
                          (default: /etc/swarmbee/worker.env)
  --node PATH             the node binary (default: node on PATH)    [NODE]
  --no-start              install and enable, but do not (re)start
  --dry-run               check this host and print the settings and unit it would
                          install; change nothing (needs no root)
  -h, --help              this help

Settings not given keep their value from an existing /etc/swarmbee/worker.env.
EOF
}

die() {
  printf 'install-worker: error: %s\n' "$*" >&2
  exit 1
}

say() {
  printf 'install-worker: %s\n' "$*" >&2
}

need_value() {
  [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}

# --- options ---------------------------------------------------------------
COORDINATOR_URL="${COORDINATOR_URL:-}"
WORKER_NAME="${WORKER_NAME:-}"
ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-}"
LISTEN_ADDRESS="${LISTEN_ADDRESS:-}"
EXECUTION_PROVIDER="${EXECUTION_PROVIDER:-}"
EXTRA_ARGS="${EXTRA_ARGS-__unset__}"
TOKEN_FILE=''
SOURCE="${SWARMBEE_SOURCE:-}"
INSTALL_DIR="${INSTALL_DIR:-/opt/swarmbee}"
NODE="${NODE:-}"
ENV_FILE="${ENV_FILE:-/etc/swarmbee/worker.env}"
DRY_RUN=0
START=1

while [[ $# -gt 0 ]]; do
  case "$1" in
  --join) need_value "$@" && COORDINATOR_URL="$2" && shift 2 ;;
  --name) need_value "$@" && WORKER_NAME="$2" && shift 2 ;;
  --advertise) need_value "$@" && ADVERTISE_ADDRESS="$2" && shift 2 ;;
  --listen) need_value "$@" && LISTEN_ADDRESS="$2" && shift 2 ;;
  --execution-provider) need_value "$@" && EXECUTION_PROVIDER="$2" && shift 2 ;;
  --extra-args)
    [[ $# -ge 2 ]] || die '--extra-args needs a value (use "" for none)'
    EXTRA_ARGS="$2" && shift 2
    ;;
  --token-file) need_value "$@" && TOKEN_FILE="$2" && shift 2 ;;
  --token) die '--token would show the token in ps and in shell history: use --token-file FILE or SWARMBEE_TOKEN' ;;
  --source) need_value "$@" && SOURCE="$2" && shift 2 ;;
  --install-dir) need_value "$@" && INSTALL_DIR="$2" && shift 2 ;;
  --node) need_value "$@" && NODE="$2" && shift 2 ;;
  --env-file) need_value "$@" && ENV_FILE="$2" && shift 2 ;;
  --no-start) START=0 && shift ;;
  --dry-run) DRY_RUN=1 && shift ;;
  -h | --help) usage && exit 0 ;;
  *) die "unknown option '$1' (see --help)" ;;
  esac
done

for path in "${INSTALL_DIR}" "${ENV_FILE}"; do
  [[ "${path}" == /* && "${path}" != *[\|[:space:]]* ]] ||
    die "${path} must be an absolute path without spaces or '|'"
done
UNIT_FILE="/etc/systemd/system/${UNIT_NAME}.service"
DROPIN_FILE="/etc/systemd/system/${UNIT_NAME}.service.d/gpu.conf"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# --- checks ----------------------------------------------------------------
check_root() {
  [[ "${DRY_RUN}" -eq 1 || "$(id -u)" -eq 0 ]] ||
    die 'run as root (sudo), or with --dry-run to only check this host'
}

# onnxruntime-node publishes binaries for linux x64 and arm64 only.
check_arch() {
  local machine
  machine="$(uname -m)"
  case "${machine}" in
  x86_64 | amd64 | aarch64 | arm64) ;;
  armv6* | armv7* | armv8l | armhf | arm)
    die "this is a 32-bit ARM system (${machine}). onnxruntime-node has no 32-bit ARM build, so SwarmBee cannot run here. Install a 64-bit OS: Raspberry Pi OS (64-bit) on a Pi 3, 4, 5 or Zero 2 W; JetPack on a Jetson."
    ;;
  i?86 | x86)
    die "this is a 32-bit x86 system (${machine}). onnxruntime-node has no 32-bit build: install a 64-bit OS."
    ;;
  *)
    die "unsupported architecture ${machine}: onnxruntime-node publishes binaries for x86_64 and aarch64 (arm64) Linux only."
    ;;
  esac
}

version_at_least() { # version_at_least HAVE WANT
  local have want i
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a want <<<"$2"
  for i in 0 1 2; do
    ((10#${have[i]:-0} > 10#${want[i]:-0})) && return 0
    ((10#${have[i]:-0} < 10#${want[i]:-0})) && return 1
  done
  return 0
}

check_node() {
  if [[ -z "${NODE}" ]]; then
    NODE="$(command -v node || true)"
    [[ -n "${NODE}" ]] ||
      die "node is not installed (or not on PATH). Install Node.js ${MIN_NODE} or newer system-wide, e.g. from NodeSource: https://github.com/nodesource/distributions"
  fi
  [[ -x "${NODE}" ]] || die "${NODE} is not an executable node"
  NODE="$(readlink -f "${NODE}")"
  local version arch
  version="$("${NODE}" -p 'process.versions.node')" || die "${NODE} does not run"
  version_at_least "${version}" "${MIN_NODE}" ||
    die "Node.js ${version} is too old: SwarmBee needs ${MIN_NODE} or newer (Node 20 LTS or later)"
  # A 64-bit kernel can run a 32-bit userland (Raspberry Pi OS 32-bit on a Pi 4 says aarch64).
  arch="$("${NODE}" -p 'process.arch')"
  case "${arch}" in
  x64 | arm64) ;;
  *) die "node is a ${arch} build: onnxruntime-node has no ${arch} binaries. Install a 64-bit OS and a 64-bit (arm64 or x64) Node.js." ;;
  esac
  case "${NODE}" in
  /home/* | /root/* | /run/user/*)
    die "node is at ${NODE}, in a home directory, which the unit's ProtectHome= hides from the service. Install Node.js system-wide (NodeSource's packages, or the nodejs.org tarball under /usr/local)."
    ;;
  esac
  NODE_VERSION="${version}"
}

check_tools() {
  local tool
  for tool in npm tar sha256sum; do
    command -v "${tool}" >/dev/null || die "${tool} is not installed"
  done
  if [[ "${DRY_RUN}" -eq 0 ]]; then
    if ! command -v systemctl >/dev/null || [[ ! -d /run/systemd/system ]]; then
      die 'systemd is not running on this host: install-worker.sh sets up a systemd service'
    fi
    command -v useradd >/dev/null || die 'useradd is not installed'
  fi
}

# --- settings --------------------------------------------------------------
# The value KEY has in an existing env file (empty when absent); never sourced.
existing() {
  [[ -r "${ENV_FILE}" ]] || return 0
  sed -n "s/^$1=//p" "${ENV_FILE}" | tail -n 1
}

check_value() { # check_value NAME VALUE: one line, nothing systemd would unquote
  [[ "$2" != *[$'\n'\"\'\\\$]* ]] ||
    die "$1 must not contain newlines, quotes, backslashes or \$"
}

# The address this host uses to reach the coordinator, else its first address.
detect_advertise() {
  local host ip
  host="${COORDINATOR_URL#*://}"
  host="${host%%/*}"
  if [[ "${host}" == \[* ]]; then host="${host#[}" && host="${host%%]*}"; else host="${host%:*}"; fi
  ip="$(getent ahostsv4 "${host}" 2>/dev/null | awk 'NR == 1 { print $1 }' || true)"
  if [[ -n "${ip}" ]] && command -v ip >/dev/null; then
    ip route get "${ip}" 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }'
    return 0
  fi
  hostname -I 2>/dev/null | awk '{ print $1 }'
}

resolve_settings() {
  COORDINATOR_URL="${COORDINATOR_URL:-$(existing COORDINATOR_URL)}"
  [[ -n "${COORDINATOR_URL}" ]] || die 'the coordinator URL is required: --join ws://COORDINATOR:7070'
  [[ "${COORDINATOR_URL}" =~ ^wss?://[^/[:space:]]+(:[0-9]+)?/?$ ]] ||
    die "--join ${COORDINATOR_URL} is not ws://HOST:PORT (or wss://HOST:PORT)"
  WORKER_NAME="${WORKER_NAME:-$(existing WORKER_NAME)}"
  WORKER_NAME="${WORKER_NAME:-$(hostname -s)}"
  [[ "${WORKER_NAME}" =~ ^[A-Za-z0-9._-]+$ ]] ||
    die "worker name '${WORKER_NAME}' may hold only letters, digits, '.', '_' and '-'"
  LISTEN_ADDRESS="${LISTEN_ADDRESS:-$(existing LISTEN_ADDRESS)}"
  LISTEN_ADDRESS="${LISTEN_ADDRESS:-0.0.0.0:7071}"
  [[ "${LISTEN_ADDRESS}" =~ ^(\[[0-9A-Fa-f:.]+\]|[^:[:space:]]+):[0-9]{1,5}$ ]] ||
    die "--listen ${LISTEN_ADDRESS} is not HOST:PORT (e.g. 0.0.0.0:7071)"
  ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-$(existing ADVERTISE_ADDRESS)}"
  ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS:-$(detect_advertise)}"
  [[ -n "${ADVERTISE_ADDRESS}" ]] ||
    die 'cannot tell which address other stages should use to reach this host: pass --advertise HOST'
  [[ "${ADVERTISE_ADDRESS}" =~ ^[A-Za-z0-9.:_-]+$ ]] ||
    die "--advertise ${ADVERTISE_ADDRESS} is not a host name or IP address"
  EXECUTION_PROVIDER="${EXECUTION_PROVIDER:-$(existing EXECUTION_PROVIDER)}"
  EXECUTION_PROVIDER="${EXECUTION_PROVIDER:-cpu}"
  [[ "${EXECUTION_PROVIDER}" =~ ^[a-z0-9_-]+$ ]] ||
    die "--execution-provider ${EXECUTION_PROVIDER} is not a provider name (cpu, cuda, ...)"
  [[ "${EXTRA_ARGS}" != __unset__ ]] || EXTRA_ARGS="$(existing EXTRA_ARGS)"
  check_value EXTRA_ARGS "${EXTRA_ARGS}"

  if [[ -n "${TOKEN_FILE}" ]]; then
    [[ -r "${TOKEN_FILE}" ]] || die "cannot read the token file ${TOKEN_FILE}"
    TOKEN="$(tr -d '\r\n' <"${TOKEN_FILE}")"
  else
    TOKEN="${SWARMBEE_TOKEN:-$(existing SWARMBEE_TOKEN)}"
  fi
  [[ -n "${TOKEN}" ]] ||
    die 'the cluster token is required: --token-file FILE or SWARMBEE_TOKEN=... (the one the coordinator has; make one with: openssl rand -hex 24)'
  check_value 'the token' "${TOKEN}"
}

# --- source ----------------------------------------------------------------
# A release tarball (scripts/pack-release.sh), or a directory holding a built
# checkout or an unpacked release, which is packed first.
resolve_source() {
  SOURCE="${SOURCE:-$(dirname "${SCRIPT_DIR}")}"
  if [[ -f "${SOURCE}" ]]; then
    SOURCE="$(readlink -f "${SOURCE}")"
    # Not grep -q: it would stop reading, and tar's broken pipe would fail the pipeline.
    tar -tzf "${SOURCE}" 2>/dev/null | grep '^swarmbee-[^/]*/packages/cli/bin/swarmbee.js$' >/dev/null ||
      die "${SOURCE} is not a SwarmBee release tarball (make one with scripts/pack-release.sh)"
  elif [[ -d "${SOURCE}" && -f "${SOURCE}/scripts/pack-release.sh" ]]; then
    SOURCE="$(readlink -f "${SOURCE}")"
    [[ -f "${SOURCE}/packages/cli/dist/index.js" ]] ||
      die "${SOURCE} is a checkout that is not built: run 'npm ci && npm run build' there first, or pass --source swarmbee-VERSION.tgz"
  else
    die "--source ${SOURCE}: neither a release tarball nor a SwarmBee checkout"
  fi
}

# Prints one file of the source's deploy/systemd.
template() {
  if [[ -f "${SOURCE}" ]]; then
    tar -xzOf "${SOURCE}" --wildcards "swarmbee-*/deploy/systemd/$1"
  else
    cat "${SOURCE}/deploy/systemd/$1"
  fi
}

# --- install ---------------------------------------------------------------
CHANGED=0

# install_file SRC DEST MODE OWNER: copies when the content differs.
install_file() {
  if [[ -f "$2" ]] && cmp -s "$1" "$2"; then return 0; fi
  install -D -m "$3" -o "${4%%:*}" -g "${4##*:}" "$1" "$2"
  say "wrote $2"
  CHANGED=1
}

ensure_user() {
  if ! id -u "${SERVICE_USER}" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/swarmbee \
      --shell /usr/sbin/nologin --comment 'SwarmBee worker' "${SERVICE_USER}"
    say "created the system user ${SERVICE_USER}"
  fi
}

install_release() {
  local work sum release
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '${work}'" EXIT
  local tarball="${SOURCE}"
  if [[ -d "${SOURCE}" ]]; then
    say "packing ${SOURCE}"
    tarball="$("${SOURCE}/scripts/pack-release.sh" "${work}/swarmbee.tgz")"
  fi
  # Packing is reproducible, so the same sources give the same release.
  sum="$(sha256sum "${tarball}" | cut -c1-12)"
  release="${INSTALL_DIR}/releases/${sum}"
  if [[ -f "${release}/.installed" ]]; then
    say "release ${sum} is already installed"
  else
    say "installing release ${sum} into ${release}"
    rm -rf "${release}.partial"
    mkdir -p "${release}.partial"
    tar -xzf "${tarball}" -C "${release}.partial" --strip-components=1 --no-same-owner
    # Runtime dependencies only, for this board's platform. No install scripts: the
    # repository's `prepare` needs the dev tools, and onnxruntime-node's CPU binaries
    # ship in its package.
    (cd "${release}.partial" && PATH="$(dirname "${NODE}"):${PATH}" npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) ||
      die "npm ci failed in ${release}.partial (is the npm registry reachable?)"
    touch "${release}.partial/.installed"
    rm -rf "${release}"
    mv "${release}.partial" "${release}"
  fi
  check_provider "${release}"
  if [[ "$(readlink -f "${INSTALL_DIR}/current" 2>/dev/null || true)" != "${release}" ]]; then
    ln -sfn "${release}" "${INSTALL_DIR}/current.new"
    mv -T "${INSTALL_DIR}/current.new" "${INSTALL_DIR}/current"
    say "${INSTALL_DIR}/current -> ${release}"
    CHANGED=1
  fi
  # Keep the current release and the one before it.
  find "${INSTALL_DIR}/releases" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' |
    sort -rn | tail -n +3 | cut -d' ' -f2- | while read -r old; do
    [[ "${old}" == "${release}" ]] || rm -rf "${old}"
  done
}

# Refuses a provider this onnxruntime-node lacks now, rather than in a restart loop.
check_provider() {
  [[ "${EXECUTION_PROVIDER}" == cpu ]] && return 0
  local available
  available="$(cd "$1" && "${NODE}" -e "console.log(require('onnxruntime-node').listSupportedBackends().map((b) => b.name).join(' '))")" ||
    die "cannot load onnxruntime-node from $1"
  [[ " ${available} " == *" ${EXECUTION_PROVIDER} "* ]] ||
    die "execution provider ${EXECUTION_PROVIDER} is not in this onnxruntime-node (it has: ${available}). Its CUDA build is linux x64 only; a Jetson GPU needs an onnxruntime built for JetPack (docs/DEPLOY.md). Use --execution-provider cpu meanwhile."
}

# Fills the example env file on stdin with the settings.
render_env() {
  COORDINATOR_URL="${COORDINATOR_URL}" WORKER_NAME="${WORKER_NAME}" \
    LISTEN_ADDRESS="${LISTEN_ADDRESS}" ADVERTISE_ADDRESS="${ADVERTISE_ADDRESS}" \
    EXECUTION_PROVIDER="${EXECUTION_PROVIDER}" EXTRA_ARGS="${EXTRA_ARGS}" \
    SWARMBEE_TOKEN="$1" \
    awk -F= '
      /^[A-Z_]+=/ && ($1 in ENVIRON) { print $1 "=" ENVIRON[$1]; next }
      { print }
    '
}

# The unit on stdin with this host's node, install dir and env file.
render_unit() {
  sed -e "s|/usr/bin/node|${NODE}|g" -e "s|/opt/swarmbee|${INSTALL_DIR}|g" \
    -e "s|^EnvironmentFile=/etc/swarmbee/worker.env$|EnvironmentFile=${ENV_FILE}|"
}

main() {
  check_root
  check_arch
  check_node
  check_tools
  resolve_settings
  resolve_source
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    say "this host can run a worker: $(uname -m), Node.js ${NODE_VERSION} at ${NODE}"
    say "would install from ${SOURCE} into ${INSTALL_DIR}; ${ENV_FILE} would read (token hidden):"
    template worker.env.example | render_env '<hidden>'
    say "and ${UNIT_FILE}:"
    template "${UNIT_NAME}.service" | render_unit
    [[ "${EXECUTION_PROVIDER}" == cpu ]] || say "and the GPU drop-in ${DROPIN_FILE}"
    return 0
  fi

  ensure_user
  install -d -m 0755 "${INSTALL_DIR}" "${INSTALL_DIR}/releases"
  install_release
  local current="${INSTALL_DIR}/current/deploy/systemd" rendered
  rendered="$(mktemp)"
  render_env "${TOKEN}" <"${current}/worker.env.example" >"${rendered}"
  # The settings hold the token: a new directory for them is readable by root and the service only.
  [[ -d "$(dirname "${ENV_FILE}")" ]] || install -d -m 0750 -o root -g "${SERVICE_USER}" "$(dirname "${ENV_FILE}")"
  install_file "${rendered}" "${ENV_FILE}" 0640 "root:${SERVICE_USER}"
  render_unit <"${current}/${UNIT_NAME}.service" >"${rendered}"
  install_file "${rendered}" "${UNIT_FILE}" 0644 root:root
  if [[ "${EXECUTION_PROVIDER}" == cpu ]]; then
    if [[ -f "${DROPIN_FILE}" ]]; then
      rm -f "${DROPIN_FILE}" && say "removed ${DROPIN_FILE}" && CHANGED=1
    fi
  else
    install_file "${current}/${UNIT_NAME}.service.d/gpu.conf" "${DROPIN_FILE}" 0644 root:root
  fi
  rm -f "${rendered}"

  systemctl daemon-reload
  systemctl enable --quiet "${UNIT_NAME}.service"
  if [[ "${START}" -eq 0 ]]; then
    say "installed and enabled; start it with: systemctl start ${UNIT_NAME}"
    return 0
  fi
  if [[ "${CHANGED}" -eq 1 ]]; then systemctl restart "${UNIT_NAME}.service"; else systemctl start "${UNIT_NAME}.service"; fi
  sleep 3
  if systemctl is-active --quiet "${UNIT_NAME}.service"; then
    say "${UNIT_NAME} is running as ${WORKER_NAME}, joining ${COORDINATOR_URL}, reachable at ${ADVERTISE_ADDRESS}"
    say "follow it with: journalctl -u ${UNIT_NAME} -f"
  else
    journalctl -u "${UNIT_NAME}" -n 20 --no-pager >&2 || true
    die "${UNIT_NAME} did not stay up: see systemctl status ${UNIT_NAME}"
  fi
}

main
