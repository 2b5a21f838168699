# SPDX-License-Identifier: BSD-2-Clause
"""Real servers as the end-to-end tests (tests/e2e/test_servers.py) and the
benchmark (bench/measure_ready.py) start them: nginx needs a config of its
own to run anywhere but as the system's service.

    from ctld.servers import nginx_args
    argv = ["/usr/sbin/nginx"] + nginx_args(8080, "/tmp/x")
"""
import os
import tempfile

# Everything in its own directory, no access log, its error log on stderr at
# `notice` (the level that says "start worker processes" once its sockets
# listen; nginx's default, error, says nothing), one worker.
NGINX_CONF = """worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr notice;
daemon {daemon};
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
"""


def nginx_args(port, parent, daemon="off"):
    """nginx's arguments for 127.0.0.1:port (answering GET / with 200), its
    config and files in a new directory under parent. daemon="on": nginx's
    default, the master forks and the first process exits."""
    d = tempfile.mkdtemp(dir=parent, prefix="nginx-")
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, daemon=daemon))
    return ["-e", "stderr", "-p", d + "/", "-c", path]
