#!/usr/bin/env bash
# Packs a built checkout into a release tarball for boards: the compiled
# JavaScript (packages/*/dist), the package manifests and lock file, the
# deploy files and the install script. On the board, install-worker.sh unpacks it
# and runs `npm ci --omit=dev --ignore-scripts`, so the board compiles nothing
# and needs no dev tools; npm fetches the runtime dependencies for the board's
# own platform (onnxruntime-node's linux/arm64 CPU binaries ship in its package).
#
#   npm ci && npm run build
#   scripts/pack-release.sh                  # writes swarmbee-<version>.tgz here
#   scripts/pack-release.sh /tmp/sb.tgz      # or there
set -euo pipefail

die() {
  printf 'pack-release: %s\n' "$*" >&2
  exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v node >/dev/null || die 'node is not on PATH'
version="$(node -p "require(process.argv[1]).version" "${root}/package.json")"
out="${1:-${PWD}/swarmbee-${version}.tgz}"

for dir in "${root}"/packages/*/; do
  [[ -f "${dir}dist/index.js" ]] ||
    die "${dir}dist is missing or incomplete: run 'npm ci && npm run build' in ${root} first"
done

staging="$(mktemp -d)"
trap 'rm -rf "${staging}"' EXIT
release="${staging}/swarmbee-${version}"
mkdir -p "${release}/packages" "${release}/scripts" "${release}/docs"

cp "${root}/package.json" "${root}/package-lock.json" "${root}/README.md" "${release}/"
cp -R "${root}/deploy" "${release}/"
cp "${root}/scripts/install-worker.sh" "${root}/scripts/pack-release.sh" "${release}/scripts/"
cp "${root}"/docs/*.md "${release}/docs/"
for dir in "${root}"/packages/*/; do
  name="$(basename "${dir}")"
  mkdir -p "${release}/packages/${name}"
  cp "${dir}package.json" "${release}/packages/${name}/"
  # What the package ships but its TypeScript sources: dist, bin, data such as optimize's corpus.
  for entry in $(node -p "require('${dir}package.json').files.filter((f) => f !== 'src').join(' ')"); do
    cp -R "${dir}${entry}" "${release}/packages/${name}/"
  done
done
find "${release}" -name '*.tsbuildinfo' -delete
# Secrets and local copies of the examples stay behind.
rm -f "${release}/deploy/docker/swarmbee.env" "${release}"/deploy/systemd/*.env
if commit="$(git -C "${root}" rev-parse --short HEAD 2>/dev/null)"; then
  printf 'version=%s\ncommit=%s\n' "${version}" "${commit}" >"${release}/RELEASE"
elif [[ -f "${root}/RELEASE" ]]; then
  cp "${root}/RELEASE" "${release}/RELEASE" # repacking an unpacked release
fi

mkdir -p "$(dirname "${out}")"
# Reproducible: the same files give the same bytes, so install-worker.sh can tell
# whether a release is new by its hash.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "${staging}" \
  -cf - "swarmbee-${version}" | gzip -n >"${out}"
printf '%s\n' "${out}"
