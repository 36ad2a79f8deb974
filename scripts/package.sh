#!/usr/bin/env bash
# package.sh [OUT_DIR] builds a Debian package of voipsensor:
#   /usr/bin/voipsensor                      the static binary (CGO off)
#   /lib/systemd/system/voipsensor.service   the unit (deploy/voipsensor.service)
#   /etc/voipsensor/voipsensor.conf          the sample configuration (a conffile)
#   /usr/share/man/man1/voipsensor.1.gz      the man page, generated from the flags
#   /usr/share/voipsensor/grafana/...        the Grafana dashboard
# and prints the .deb's path. The package creates the system user
# voipsensor and /var/spool/voipsensor, and enables (but does not start)
# the service where systemd runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out}
mkdir -p "$out"
version=$(sed -n 's/^var Version = "\(.*\)"$/\1/p' internal/sensor/wire_manager.go)
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/voipsensor" \
	"$root/usr/share/man/man1" "$root/usr/share/voipsensor/grafana" "$root/usr/share/doc/voipsensor"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/usr/bin/voipsensor" ./cmd/voipsensor
install -m 0644 deploy/voipsensor.service "$root/lib/systemd/system/voipsensor.service"
install -m 0640 deploy/voipsensor.conf "$root/etc/voipsensor/voipsensor.conf"
install -m 0644 deploy/grafana/voipsensor.json "$root/usr/share/voipsensor/grafana/voipsensor.json"
install -m 0644 LICENSE "$root/usr/share/doc/voipsensor/copyright"

# The man page: one section per subcommand, from its own --help.
bin=$root/usr/bin/voipsensor
{
	echo ".TH VOIPSENSOR 1 \"$(date -u +%Y-%m-%d)\" \"voipsensor $version\" \"User Commands\""
	echo ".SH NAME"
	echo "voipsensor \\- passive VoIP monitoring sensor"
	echo ".SH SYNOPSIS"
	echo ".B voipsensor"
	echo "\\fICOMMAND\\fR [\\fIflags\\fR]"
	echo ".SH DESCRIPTION"
	echo "voipsensor watches SIP and RTP/RTCP on a network interface or reads pcap/pcapng files, follows every"
	echo "call and registration, measures voice quality (loss, jitter, MOS, RTCP), stores one CDR per call and"
	echo "serves it all through the VoIPmonitor manager API, an Asterisk-compatible AMI, OpenSIPS-style MI,"
	echo "a web console and Prometheus metrics."
	echo ".SH COMMANDS"
	"$bin" --help 2>&1 | sed -n 's/^  \([a-z]*\) \(.*\)$/.TP\n.B \1\n\2/p'
	for c in run demo read gen ctl key; do
		echo ".SH \"$(echo "$c" | tr a-z A-Z)\""
		echo ".nf"
		"$bin" "$c" --help 2>&1 | sed 's/\\/\\\\/g; s/^\./\\\&./'
		echo ".fi"
	done
	echo ".SH FILES"
	echo ".TP"
	echo "/etc/voipsensor/voipsensor.conf"
	echo "the configuration: every option, commented, with its default"
	echo ".TP"
	echo "/var/spool/voipsensor"
	echo "the SQLite CDR database, spill files and recordings"
	echo ".SH SEE ALSO"
	echo "The README in the source repository."
} | gzip -9n > "$root/usr/share/man/man1/voipsensor.1.gz"

cat > "$root/DEBIAN/control" <<CONTROL
Package: voipsensor
Version: $version
Architecture: $arch
Maintainer: voipsensor developers <voipsensor@localhost>
Section: net
Priority: optional
Depends: adduser
Description: passive VoIP monitoring sensor
 Follows SIP calls and registrations on an interface or in capture files,
 measures RTP/RTCP voice quality (loss, jitter, MOS), stores CDRs and serves
 them through the VoIPmonitor manager API, AMI, OpenSIPS MI, a web console
 and Prometheus metrics.
CONTROL
echo /etc/voipsensor/voipsensor.conf > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if ! getent passwd voipsensor >/dev/null; then
		adduser --system --group --home /var/spool/voipsensor --no-create-home voipsensor >/dev/null
	fi
	install -d -o voipsensor -g voipsensor -m 0750 /var/spool/voipsensor
	chgrp voipsensor /etc/voipsensor/voipsensor.conf
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null || true
		systemctl enable voipsensor.service >/dev/null || true
	fi
fi
POSTINST
cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl disable --now voipsensor.service >/dev/null || true
fi
PRERM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
deb="$out/voipsensor_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
