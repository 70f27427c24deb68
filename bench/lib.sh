# What bench/run.sh and bench/instructions.sh share: readiness, ports and nginx configs.
# Sourced after the script defines `die` and sets WORK (its work directory); logs of started
# processes are $WORK/NAME.log.
# shellcheck shell=bash

port_in_use() {
    # A successful connect means something already listens there.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_ready NAME URL PID: polls URL (at most BENCH_READY_TIMEOUT s, default 180) until it answers
# 2xx; fails if PID died.
wait_ready() {
    # Long enough for a cold compile of every plugin on one core (a JavaScript component
    # carries its engine: tens of seconds).
    local name=$1 url=$2 pid=$3 deadline=$((SECONDS + ${BENCH_READY_TIMEOUT:-180}))
    until curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$WORK/$name.log" >&2 2>/dev/null || true
            die "$name exited during start-up (log above)"
        fi
        if [[ $SECONDS -ge $deadline ]]; then
            tail -n 20 "$WORK/$name.log" >&2 2>/dev/null || true
            die "$name did not answer $url within ${BENCH_READY_TIMEOUT:-180} s"
        fi
        sleep 0.05
    done
}

# nginx_conf NAME PORT SERVER_BODY [HTTP_EXTRA]: a self-contained config under $WORK/NAME.
nginx_conf() {
    local name=$1 port=$2 body=$3 extra=${4:-} dir="$WORK/$1" user_line=""
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        # nginx started as root drops its workers to this user, which must read $WORK.
        user_line="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
    fi
    cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    default_type application/json;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    $extra
    server {
        listen 127.0.0.1:$port;
        $body
    }
}
EOF
    echo "$dir/nginx.conf"
}

# nginx_proxy_conf NAME PORT BACKEND_PORT [DIRECTIVES]: the bench's case (b), nginx's proxy_pass
# to the backend with upstream keepalive (bench/instructions.sh counts the same config);
# DIRECTIVES, more of the location's after its own (case (b')'s fields).
nginx_proxy_conf() {
    nginx_conf "$1" "$2" \
        "location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            ${4:-}
        }" \
        "upstream backend { server 127.0.0.1:$3; keepalive 64; keepalive_requests 1000000; }"
}

# start_document_backend PORT: nginx serving the bench's document (bench/data.json, as
# /data.json) on PORT, its pid added to PIDS (the caller stops them). Needs ROOT and NGINX.
start_document_backend() {
    local port=$1 conf
    chmod 755 "$WORK"
    mkdir -p "$WORK/www"
    cp "$ROOT/bench/data.json" "$WORK/www/data.json"
    chmod -R a+rX "$WORK/www"
    conf=$(nginx_conf backend "$port" "location / { root $WORK/www; }")
    "$NGINX" -p "$WORK/backend/" -c "$conf" -e "$WORK/backend/error.log" >"$WORK/backend.log" 2>&1 &
    PIDS+=($!)
    wait_ready backend "http://127.0.0.1:$port/data.json" "$!"
}
