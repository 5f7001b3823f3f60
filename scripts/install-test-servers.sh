#!/usr/bin/env bash
# Install the servers the tests start on loopback: nginx, dnsmasq, etcd, redis-server.
# `--bench` also installs haproxy, which only `python -m benchmarks.sidecar` uses (the tests
# never need it).
# Idempotent: installs only what is missing from PATH. Uses apt-get, as root or through
# sudo; says what to install by hand when neither is possible. Tests whose server is
# missing are skipped (the test run ends with a line saying which), never failed.
set -euo pipefail

declare -A package=([nginx]=nginx-light [dnsmasq]=dnsmasq-base [etcd]=etcd-server
                    [redis-server]=redis-server [haproxy]=haproxy)
programs=(nginx dnsmasq etcd redis-server)
if [ "${1:-}" = "--bench" ]; then
  programs+=(haproxy)
fi
need=()
for program in "${programs[@]}"; do
  command -v "$program" >/dev/null 2>&1 || need+=("${package[$program]}")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "test servers: all installed (${programs[*]})"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test servers: missing ${need[*]}; no apt-get here: install nginx, dnsmasq, etcd and" \
       "redis-server with your package manager (the tests that need them are skipped)" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "test servers: missing ${need[*]}; run as root or install sudo, or install them" \
       "yourself: apt-get install ${need[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "test servers: installing ${need[*]}"
${as_root[@]+"${as_root[@]}"} apt-get update -qq
${as_root[@]+"${as_root[@]}"} apt-get install -y -qq "${need[@]}" >/dev/null
echo "test servers: installed ${need[*]}"
