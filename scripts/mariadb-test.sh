#!/usr/bin/env bash
# mariadb-test.sh runs a throw-away MariaDB server for the cdr/sqlstore tests.
#
#   scripts/mariadb-test.sh start    install mariadb-server if missing (apt-get), create a temp
#                                    datadir, start mariadbd on 127.0.0.1:<free port>, create the
#                                    database and a user, print the DSN on stdout
#   scripts/mariadb-test.sh stop     stop the server and delete the datadir
#   scripts/mariadb-test.sh down     stop the server but keep datadir and port (simulated outage)
#   scripts/mariadb-test.sh up       start it again after `down` (same port, same data)
#   scripts/mariadb-test.sh dsn      print the DSN of the running instance
#   scripts/mariadb-test.sh status   exit 0 when the server answers
#
# State lives in $VOIPSENSOR_MARIADB_DIR (default /tmp/voipsensor-mariadb-$UID).
# Typical use:
#   export VOIPSENSOR_TEST_MYSQL_DSN=$(scripts/mariadb-test.sh start)
#   export VOIPSENSOR_TEST_MYSQL_CTL=$PWD/scripts/mariadb-test.sh
#   go test ./internal/cdr/...
#   scripts/mariadb-test.sh stop
set -euo pipefail

state=${VOIPSENSOR_MARIADB_DIR:-/tmp/voipsensor-mariadb-$(id -u)}
db=voipsensor_test
user=voipsensor

log() { echo "mariadb-test: $*" >&2; }

find_bin() {
	local name
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
		if [ -x "/usr/sbin/$name" ]; then echo "/usr/sbin/$name"; return 0; fi
	done
	return 1
}

ensure_installed() {
	if find_bin mariadbd mysqld >/dev/null; then return 0; fi
	log "mariadb-server not found, installing with apt-get"
	if [ "$(id -u)" -ne 0 ]; then log "need root to install mariadb-server"; exit 1; fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends mariadb-server mariadb-client >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends mariadb-server mariadb-client >&2; }
	# The package may start a system instance; we run our own, so stop it again.
	if command -v service >/dev/null 2>&1; then service mariadb stop >/dev/null 2>&1 || true; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return 0
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		if ! ss -ltn "sport = :$p" | grep -q LISTEN; then echo "$p"; return 0; fi
	done
	return 1
}

client() { "$(find_bin mariadb mysql)" --no-defaults --socket="$state/mysqld.sock" -uroot "$@"; }

alive() { [ -S "$state/mysqld.sock" ] && client -e 'SELECT 1' >/dev/null 2>&1; }

run_server() {
	local port=$1 daemon
	daemon=$(find_bin mariadbd mysqld)
	# Started detached (setsid) so the caller's shell can exit; the pid file is our handle.
	setsid "$daemon" --no-defaults \
		--datadir="$state/data" --socket="$state/mysqld.sock" --pid-file="$state/mysqld.pid" \
		--port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
		--user="$(id -un)" --log-error="$state/error.log" \
		--innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
		--skip-log-bin --max-connections=200 </dev/null >/dev/null 2>&1 &
	local i
	for i in $(seq 1 150); do
		if alive; then return 0; fi
		sleep 0.2
	done
	log "server did not come up; tail of $state/error.log:"
	tail -n 20 "$state/error.log" >&2 || true
	return 1
}

stop_server() {
	if [ ! -f "$state/mysqld.pid" ]; then return 0; fi
	local pid
	pid=$(cat "$state/mysqld.pid")
	kill "$pid" 2>/dev/null || true
	local i
	for i in $(seq 1 150); do
		if ! kill -0 "$pid" 2>/dev/null; then rm -f "$state/mysqld.pid"; return 0; fi
		sleep 0.2
	done
	log "server $pid did not stop, killing"
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$state/mysqld.pid"
}

print_dsn() {
	echo "$user:$(cat "$state/password")@tcp(127.0.0.1:$(cat "$state/port"))/$db?parseTime=true"
}

cmd_start() {
	if alive; then print_dsn; return 0; fi
	# A datadir left by a run that was killed before "stop" is reused; the
	# DSN is printed in every case (an empty DSN fails every MySQL test).
	if [ -f "$state/port" ] && [ -f "$state/password" ] && [ -d "$state/data" ]; then
		cmd_up
		print_dsn
		return 0
	fi
	ensure_installed
	rm -rf "$state"
	mkdir -p "$state/data"
	local installdb port password
	installdb=$(find_bin mariadb-install-db mysql_install_db)
	"$installdb" --no-defaults --datadir="$state/data" --user="$(id -un)" \
		--auth-root-authentication-method=socket --skip-test-db >"$state/install.log" 2>&1 ||
		{ log "install-db failed:"; cat "$state/install.log" >&2; exit 1; }
	port=$(free_port)
	echo "$port" >"$state/port"
	password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$password" >"$state/password"
	run_server "$port"
	client <<-SQL
		CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8mb4;
		CREATE USER '$user'@'127.0.0.1' IDENTIFIED BY '$password';
		GRANT ALL PRIVILEGES ON $db.* TO '$user'@'127.0.0.1';
		FLUSH PRIVILEGES;
	SQL
	log "MariaDB running on 127.0.0.1:$port, datadir $state/data"
	print_dsn
}

cmd_up() {
	if alive; then return 0; fi
	[ -f "$state/port" ] || { log "no instance in $state; use start"; exit 1; }
	run_server "$(cat "$state/port")"
}

case "${1:-}" in
start) cmd_start ;;
stop)
	stop_server
	rm -rf "$state"
	;;
down) stop_server ;;
up) cmd_up ;;
dsn) print_dsn ;;
status) alive ;;
*)
	echo "usage: $0 start|stop|down|up|dsn|status" >&2
	exit 2
	;;
esac
