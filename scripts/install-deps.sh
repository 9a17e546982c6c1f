#!/usr/bin/env bash
# Installs every Debian 12 package sipwarden needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt; safe to run on every build.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  libboost-dev libssl-dev libsqlite3-dev libpq-dev
  libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libmimalloc-dev
  # unit tests, parser benchmark, fuzzing, style
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev clang-format clang-tidy
  # real peers for integration tests and benchmarks
  sip-tester baresip-core sipvicious nmap kamailio kamailio-tls-modules
  openssl python3 procps iproute2 tshark bc fail2ban
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Kamailio and others must not start system services during install (tests start their own).
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
