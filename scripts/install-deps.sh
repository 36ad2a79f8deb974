#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine (idempotent; root).
# Real peers and oracles: tshark (reference statistics), sipp (real SIP
# traffic), tcpdump (filter reference), netcat-openbsd and socat (clients),
# sox and espeak-ng (audio references), mariadb-server (real database),
# GNU time and bc (bench.sh), kamailio (kamctl against the MI FIFO), curl
# and python3 (MI over HTTP and XML-RPC), prometheus (scrapes the metrics
# endpoint), kamailio's siptrace and sngrep (HEP peers: test/hep_test.go).
set -euo pipefail
pkgs=(tshark sip-tester tcpdump netcat-openbsd socat sox espeak-ng mariadb-server time bc kamailio curl python3 python3-panoramisk chromium prometheus sngrep)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm usually come with the machine (their nodejs package
# conflicts with Debian's npm); install Debian's only when absent.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
# AMI black-box clients (test/ami_clients_test.go): npm asterisk-manager,
# pinned in test/ami/package.json, installed into test/ami/node_modules
# (its own package.json keeps npm from pruning test/node_modules).
if [ ! -d "$(dirname "$0")/../test/ami/node_modules/asterisk-manager" ]; then
	(cd "$(dirname "$0")/../test/ami" && npm i --no-audit --no-fund --no-package-lock >/dev/null)
fi
# Web console browser tests (test/web_console_test.go): playwright-core,
# pinned, driving Debian's /usr/bin/chromium (it never downloads a browser),
# installed into test/node_modules.
if [ ! -d "$(dirname "$0")/../test/node_modules/playwright-core" ]; then
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$(dirname "$0")/../test" --no-save --no-audit --no-fund --no-package-lock playwright-core@1.65.1 >/dev/null
fi
