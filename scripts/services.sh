#!/usr/bin/env bash
# Starts, stops and reports the real services that the tests run against:
# PostgreSQL 15, Redis, NATS and a single-node Apache Kafka (KRaft), all on
# 127.0.0.1. See docs/testing.md.
#
#   scripts/services.sh up     [postgres|redis|nats|kafka ...]   (no names = all)
#   scripts/services.sh down   [postgres|redis|nats|kafka ...]
#   scripts/services.sh status [postgres|redis|nats|kafka ...]
#
# `up` installs what is missing (Debian packages, Kafka jars from Maven
# Central), is idempotent, and returns only when every requested service
# answers a real request. `status` prints one line per service and exits
# non-zero when any requested service is down.
#
# Environment:
#   GRAINLINE_SERVICES_DIR      state directory (default <repo>/.services)
#   GRAINLINE_SERVICES_TIMEOUT  seconds to wait for each service (default 180)
#   GRAINLINE_KAFKA_HEAP        JVM heap flags of the broker
#                               (default "-Xmx512m -Xms256m")
#   GRAINLINE_PG_PORT, GRAINLINE_REDIS_PORT, GRAINLINE_NATS_PORT,
#   GRAINLINE_NATS_MONITOR_PORT, GRAINLINE_KAFKA_PORT,
#   GRAINLINE_KAFKA_CONTROLLER_PORT
#                               ports (defaults 55432, 56379, 54222, 58222,
#                               59092, 59093; all but the NATS monitoring and
#                               Kafka controller ports are internal/testenv's
#                               defaults: change those together)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${GRAINLINE_SERVICES_DIR:-$ROOT/.services}
TIMEOUT=${GRAINLINE_SERVICES_TIMEOUT:-180}
HOST=127.0.0.1

PG_PORT=${GRAINLINE_PG_PORT:-55432}
REDIS_PORT=${GRAINLINE_REDIS_PORT:-56379}
NATS_PORT=${GRAINLINE_NATS_PORT:-54222}
NATS_MON_PORT=${GRAINLINE_NATS_MONITOR_PORT:-58222}
KAFKA_PORT=${GRAINLINE_KAFKA_PORT:-59092}
KAFKA_CONTROLLER_PORT=${GRAINLINE_KAFKA_CONTROLLER_PORT:-59093}

PG_USER=grainline
PG_PASSWORD=grainline
PG_DB=grainline
# A fixed KRaft cluster id (base64url of "grainline-test-1"): the storage is
# formatted once per state directory, so it never needs to change.
KAFKA_CLUSTER_ID=Z3JhaW5saW5lLXRlc3QtMQ
KAFKA_HEAP=${GRAINLINE_KAFKA_HEAP:--Xmx512m -Xms256m}

ALL=(postgres redis nats kafka)

log() { printf '%s\n' "services: $*" >&2; }
die() {
	printf '%s\n' "services: error: $*" >&2
	exit 1
}

# tail_log FILE: prints the end of a log file, for error messages.
tail_log() {
	if [[ -f $1 ]]; then
		printf '%s\n' "----- last lines of $1 -----" >&2
		tail -n 40 "$1" >&2 || true
		printf '%s\n' "-----" >&2
	else
		printf '%s\n' "(no log file at $1)" >&2
	fi
}

# wait_for DESCRIPTION LOGFILE COMMAND...: polls COMMAND until it succeeds or
# TIMEOUT seconds pass; on timeout prints the log tail and fails.
wait_for() {
	local what=$1 logfile=$2
	shift 2
	local deadline=$((SECONDS + TIMEOUT))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			log "$what did not become ready within ${TIMEOUT}s"
			tail_log "$logfile"
			die "$what is not ready"
		fi
		sleep 0.2
	done
}

# port_open PORT: true when something accepts TCP connections on HOST:PORT.
port_open() {
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# pid_alive PIDFILE NAME: true when PIDFILE names a live process whose command
# line contains NAME.
pid_alive() {
	local pidfile=$1 name=$2 pid
	[[ -s $pidfile ]] || return 1
	pid=$(head -n1 "$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

# stop_pid PIDFILE NAME: sends SIGTERM, waits for the process to exit, and
# sends SIGKILL if it has not exited within TIMEOUT seconds.
stop_pid() {
	local pidfile=$1 name=$2 pid deadline
	if ! pid_alive "$pidfile" "$name"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(head -n1 "$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "$name (pid $pid) ignored SIGTERM for ${TIMEOUT}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		sleep 0.2
	done
	rm -f "$pidfile"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# apt_install PACKAGE...: installs Debian packages, refreshing the package
# lists only when the first attempt fails.
apt_install() {
	is_root || die "missing packages: $* (install them with: sudo apt-get install $*)"
	mkdir -p "$STATE"
	local aptlog=$STATE/apt.log
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get install -y -q --no-install-recommends "$@" </dev/null >>"$aptlog" 2>&1; then
		return 0
	fi
	log "apt-get install failed; refreshing package lists and retrying"
	if apt-get update -q </dev/null >>"$aptlog" 2>&1 &&
		apt-get install -y -q --no-install-recommends "$@" </dev/null >>"$aptlog" 2>&1; then
		return 0
	fi
	tail_log "$aptlog"
	die "could not install $*"
}

# as_pg_user COMMAND...: runs COMMAND as the postgres user when we are
# root (PostgreSQL refuses to run as root), as ourselves otherwise.
as_pg_user() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# ---------------------------------------------------------------- PostgreSQL

pg_bindir() {
	local d
	for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
		if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

# pg_dir: the cluster's directory. It lives in the state directory unless the
# postgres user cannot reach it there (a checkout under a private home, say);
# then it lives under /var/tmp, named after the state directory.
pg_dir() {
	mkdir -p "$STATE"
	if ! is_root || runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
		printf '%s\n' "$STATE/postgres"
		return 0
	fi
	printf '%s\n' "/var/tmp/grainline-services-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)/postgres"
}

pg_ready() {
	PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 timeout 10 psql -X -q -t -A -h "$HOST" -p "$PG_PORT" \
		-U "$PG_USER" -d "$PG_DB" -c 'select 1' 2>/dev/null | grep -qx 1
}

pg_up() {
	local dir data bin
	dir=$(pg_dir)
	data=$dir/data
	if pg_ready; then
		log "postgres already answers on $HOST:$PG_PORT"
		return 0
	fi
	if ! bin=$(pg_bindir) || ! command -v psql >/dev/null; then
		apt_install postgresql postgresql-client
		bin=$(pg_bindir) || die "PostgreSQL binaries not found under /usr/lib/postgresql after installing"
	fi
	if is_root && ! id postgres >/dev/null 2>&1; then
		die "the postgres OS user does not exist (it comes with the Debian postgresql package)"
	fi
	[[ $dir == "$STATE/postgres" ]] || log "the postgres user cannot reach $STATE; keeping the cluster in $dir"
	mkdir -p "$dir"
	if is_root; then
		chown postgres: "$dir"
		chmod 700 "$dir"
		runuser -u postgres -- test -w "$dir" ||
			die "the postgres user cannot write $dir (a parent directory is not traversable); set GRAINLINE_SERVICES_DIR to a directory it can reach"
	fi
	if [[ ! -s $data/PG_VERSION ]]; then
		log "initialising a PostgreSQL cluster in $data"
		rm -rf "$data"
		local pwfile=$dir/.pwfile
		printf '%s\n' "$PG_PASSWORD" >"$pwfile"
		if is_root; then chown postgres: "$pwfile"; fi
		if ! as_pg_user "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$pwfile" \
			--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
			>"$dir/initdb.log" 2>&1; then
			rm -f "$pwfile"
			tail_log "$dir/initdb.log"
			die "initdb failed"
		fi
		rm -f "$pwfile"
		printf "include 'grainline.conf'\n" >>"$data/postgresql.conf"
	fi
	# Rewritten on every start so that changes here take effect.
	cat >"$data/grainline.conf" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
listen_addresses = '$HOST'
port = $PG_PORT
# TCP only: a socket path under a deep checkout can exceed the 107-byte limit.
unix_socket_directories = ''
max_connections = 200
shared_buffers = 256MB
# Durable commits are what the truth store benchmarks measure: keep them.
fsync = on
synchronous_commit = on
full_page_writes = on
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	if is_root; then chown postgres: "$data/grainline.conf"; fi
	if as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		log "postgres is running from $data but does not answer yet; waiting"
	else
		port_open "$PG_PORT" && die "port $PG_PORT is taken by another process that is not this PostgreSQL (check: ss -ltnp | grep $PG_PORT)"
		log "starting postgres on $HOST:$PG_PORT"
		if ! as_pg_user setsid --wait "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t "$TIMEOUT" start \
			</dev/null >>"$dir/pg_ctl.log" 2>&1; then
			tail_log "$dir/pg_ctl.log"
			tail_log "$dir/postgres.log"
			die "postgres did not start"
		fi
	fi
	# The cluster's superuser is $PG_USER; create its database once.
	wait_for "postgres" "$dir/postgres.log" \
		env PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 timeout 10 psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -c 'select 1'
	if ! PGPASSWORD=$PG_PASSWORD psql -X -q -t -A -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
		-c "select 1 from pg_database where datname = '$PG_DB'" | grep -qx 1; then
		PGPASSWORD=$PG_PASSWORD psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
			-c "create database $PG_DB" >/dev/null
	fi
	wait_for "postgres" "$dir/postgres.log" pg_ready
}

pg_down() {
	local data bin
	data=$(pg_dir)/data
	[[ -s $data/PG_VERSION ]] || return 0
	bin=$(pg_bindir) || return 0
	if as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		log "stopping postgres"
		as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w -t "$TIMEOUT" stop >/dev/null ||
			die "pg_ctl stop failed (see $(pg_dir)/postgres.log)"
	fi
}

# --------------------------------------------------------------------- Redis

redis_ready() {
	[[ $(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_up() {
	local dir=$STATE/redis
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		apt_install redis-server redis-tools
	fi
	if redis_ready; then
		log "redis already answers on $HOST:$REDIS_PORT"
		return 0
	fi
	mkdir -p "$dir"
	if ! pid_alive "$dir/redis.pid" redis-server; then
		port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another process that is not Redis (check: ss -ltnp | grep $REDIS_PORT)"
		log "starting redis on $HOST:$REDIS_PORT"
		# Test data only: no snapshots, no append-only file.
		redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes \
			--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
			--save '' --appendonly no --protected-mode yes --maxclients 2000 \
			</dev/null >>"$dir/redis.stdout.log" 2>&1 ||
			{
				tail_log "$dir/redis.stdout.log"
				tail_log "$dir/redis.log"
				die "redis-server did not start"
			}
	fi
	wait_for "redis" "$dir/redis.log" redis_ready
}

redis_down() {
	local dir=$STATE/redis
	if pid_alive "$dir/redis.pid" redis-server; then
		log "stopping redis"
		stop_pid "$dir/redis.pid" redis-server
	fi
}

# ---------------------------------------------------------------------- NATS

# nats_ready: the server greets every client with an INFO line.
nats_ready() (
	local line
	exec 3<>"/dev/tcp/$HOST/$NATS_PORT" || exit 1
	read -r -t 3 line <&3 || exit 1
	[[ $line == INFO* ]]
)

nats_up() {
	local dir=$STATE/nats
	command -v nats-server >/dev/null || apt_install nats-server
	if nats_ready 2>/dev/null; then
		log "nats already answers on $HOST:$NATS_PORT"
		return 0
	fi
	mkdir -p "$dir"
	if ! pid_alive "$dir/nats.pid" nats-server; then
		port_open "$NATS_PORT" && die "port $NATS_PORT is taken by another process that is not NATS (check: ss -ltnp | grep $NATS_PORT)"
		log "starting nats on $HOST:$NATS_PORT (monitoring on $HOST:$NATS_MON_PORT)"
		setsid nats-server --addr "$HOST" --port "$NATS_PORT" \
			--http_port "$NATS_MON_PORT" --pid "$dir/nats.pid" --log "$dir/nats.log" \
			</dev/null >>"$dir/nats.stdout.log" 2>&1 &
		disown
	fi
	wait_for "nats" "$dir/nats.log" nats_ready
}

nats_down() {
	local dir=$STATE/nats
	if pid_alive "$dir/nats.pid" nats-server; then
		log "stopping nats"
		stop_pid "$dir/nats.pid" nats-server
	fi
}

# --------------------------------------------------------------------- Kafka

kafka_lib() { printf '%s\n' "$STATE/kafka/lib"; }

# kafka_install: copies the broker's jars named by deploy/kafka/pom.xml into
# the state directory; Maven caches them under ~/.m2, so a second install is
# offline. Reinstalls when the descriptor changes.
kafka_install() {
	local dir=$STATE/kafka lib pom=$ROOT/deploy/kafka/pom.xml sum
	lib=$(kafka_lib)
	[[ -f $pom ]] || die "$pom is missing"
	command -v java >/dev/null || apt_install default-jre-headless
	command -v mvn >/dev/null || apt_install maven
	sum=$(sha256sum "$pom" | cut -d' ' -f1)
	if [[ -f $lib/.pom.sha256 && $(cat "$lib/.pom.sha256") == "$sum" ]]; then
		return 0
	fi
	log "resolving Kafka jars from deploy/kafka/pom.xml"
	mkdir -p "$dir"
	rm -rf "$lib.tmp"
	if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$lib.tmp" </dev/null >"$dir/maven.log" 2>&1; then
		tail_log "$dir/maven.log"
		die "could not resolve the Kafka jars with Maven"
	fi
	printf '%s\n' "$sum" >"$lib.tmp/.pom.sha256"
	rm -rf "$lib"
	mv "$lib.tmp" "$lib"
}

kafka_write_config() {
	local dir=$STATE/kafka
	mkdir -p "$dir/data"
	cat >"$dir/server.properties" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
# Fewer internal partitions than the default 50: the first consumer group and
# the first transaction come up in well under a second on a test box.
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
	cat >"$dir/log4j.properties" <<EOF
# Written by scripts/services.sh on every start.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/kafka.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
}

# kafka_tool CLASS ARGS...: runs a Kafka command-line tool from the jars.
kafka_tool() {
	local lib
	lib=$(kafka_lib)
	java -Xmx256m -Dlog4j.configuration="file:$STATE/kafka/tools-log4j.properties" \
		-cp "$lib/*" "$@"
}

kafka_metadata_ready() {
	timeout 60 java -Xmx256m -Dlog4j.configuration="file:$STATE/kafka/tools-log4j.properties" \
		-cp "$(kafka_lib)/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "$HOST:$KAFKA_PORT" --list
}

kafka_up() {
	local dir=$STATE/kafka
	kafka_install
	mkdir -p "$dir"
	printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=%%p %%m (%%c)%%n\n' \
		>"$dir/tools-log4j.properties"
	if pid_alive "$dir/kafka.pid" kafka.Kafka; then
		log "kafka already running (pid $(cat "$dir/kafka.pid")); checking it answers"
	elif port_open "$KAFKA_PORT"; then
		# Someone else's broker on our port: accept it only if it answers.
		if kafka_metadata_ready >/dev/null 2>&1; then
			log "kafka already answers on $HOST:$KAFKA_PORT"
			return 0
		fi
		die "port $KAFKA_PORT is taken by another process that does not answer as Kafka (check: ss -ltnp | grep $KAFKA_PORT)"
	else
		port_open "$KAFKA_CONTROLLER_PORT" && die "controller port $KAFKA_CONTROLLER_PORT is taken by another process"
		kafka_write_config
		if [[ ! -f $dir/data/meta.properties ]]; then
			log "formatting Kafka storage in $dir/data"
			if ! kafka_tool kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" \
				-c "$dir/server.properties" </dev/null >"$dir/format.log" 2>&1; then
				tail_log "$dir/format.log"
				die "kafka storage format failed"
			fi
		fi
		log "starting kafka on $HOST:$KAFKA_PORT (controller $HOST:$KAFKA_CONTROLLER_PORT)"
		# shellcheck disable=SC2086 # KAFKA_HEAP holds several JVM flags.
		setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
			-Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
			-cp "$(kafka_lib)/*" kafka.Kafka "$dir/server.properties" \
			</dev/null >>"$dir/kafka.stdout.log" 2>&1 &
		printf '%s\n' "$!" >"$dir/kafka.pid"
		disown
	fi
	local deadline=$((SECONDS + TIMEOUT))
	until port_open "$KAFKA_PORT"; do
		# Liveness only: right after the fork the process may not have
		# exec'd java yet, so its command line does not name kafka.Kafka.
		if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
			tail_log "$dir/kafka.stdout.log"
			tail_log "$dir/kafka.log"
			die "kafka exited during start-up"
		fi
		if ((SECONDS >= deadline)); then
			tail_log "$dir/kafka.log"
			die "kafka did not open $HOST:$KAFKA_PORT within ${TIMEOUT}s"
		fi
		sleep 0.2
	done
	# A real metadata request: the broker has joined its own quorum and serves.
	wait_for "kafka" "$dir/kafka.log" kafka_metadata_ready
}

kafka_down() {
	local dir=$STATE/kafka
	if pid_alive "$dir/kafka.pid" kafka.Kafka; then
		log "stopping kafka"
		stop_pid "$dir/kafka.pid" kafka.Kafka
	fi
}

# -------------------------------------------------------------------- status

# status_line NAME ADDRESS CHECK...: prints "NAME up|down ADDRESS" and
# returns the check's result.
status_line() {
	local name=$1 addr=$2
	shift 2
	if "$@" >/dev/null 2>&1; then
		printf '%-9s %-5s %s\n' "$name" up "$addr"
		return 0
	fi
	printf '%-9s %-5s %s\n' "$name" down "$addr"
	return 1
}

kafka_status_check() {
	port_open "$KAFKA_PORT" || return 1
	# Right after `up` has made a metadata request, the open port is enough.
	[[ ${KAFKA_JUST_CHECKED:-} == 1 ]] && return 0
	# With the jars present, ask for metadata; otherwise the open port must do.
	if [[ -d $(kafka_lib) ]] && command -v java >/dev/null; then
		kafka_metadata_ready
	fi
}

status_of() {
	case $1 in
	postgres) status_line postgres "postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB" pg_ready ;;
	redis) status_line redis "$HOST:$REDIS_PORT" redis_ready ;;
	nats) status_line nats "nats://$HOST:$NATS_PORT" nats_ready ;;
	kafka) status_line kafka "$HOST:$KAFKA_PORT" kafka_status_check ;;
	esac
}

# ---------------------------------------------------------------------- main

usage() {
	sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

main() {
	(($# >= 1)) || usage
	local cmd=$1 name
	shift
	local names=() arg
	for arg in "$@"; do
		case $arg in
		postgres | postgresql | pg) names+=(postgres) ;;
		redis | nats | kafka) names+=("$arg") ;;
		*) die "unknown service '$arg' (known: ${ALL[*]})" ;;
		esac
	done
	((${#names[@]})) || names=("${ALL[@]}")
	case $cmd in
	up)
		mkdir -p "$STATE"
		for name in "${names[@]}"; do
			case $name in
			postgres) pg_up ;;
			redis) redis_up ;;
			nats) nats_up ;;
			kafka)
				kafka_up
				KAFKA_JUST_CHECKED=1
				;;
			esac
		done
		local rc=0
		for name in "${names[@]}"; do
			status_of "$name" || rc=1
		done
		return "$rc"
		;;
	down)
		for name in "${names[@]}"; do
			case $name in
			postgres) pg_down ;;
			redis) redis_down ;;
			nats) nats_down ;;
			kafka) kafka_down ;;
			esac
		done
		;;
	status)
		local rc=0
		for name in "${names[@]}"; do
			status_of "$name" || rc=1
		done
		return "$rc"
		;;
	*) usage ;;
	esac
}

main "$@"
