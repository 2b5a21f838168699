// SPDX-License-Identifier: BSD-2-Clause
/*
 * help.c - ctl's usage and help texts, one entry per command: its name,
 * its one-line usage and the full help with examples. Kept beside each
 * other so a new option is documented where its command is.
 */
#include "common/util.h"
#include "ctl/args.h"

static const struct {
	const char *name;
	const char *usage;
	const char *help;
} cmd_texts[CLI_NCMDS] = {
	[CLI_NONE] = {
		"ctl",
		"usage: ctl [-S SOCKET | -H NODESET|@FILE] [-b] [--summary] [--json] COMMAND [ARGS...]\n"
		"       ctl help [COMMAND]\n",
		"Run and control processes through ctld-bpf daemons.\n"
		"\n"
		"Commands:\n"
		"  run -- PROGRAM [ARGS...]    run a program, show its output live, exit with\n"
		"                              its status\n"
		"  start -- PROGRAM [ARGS...]  start a program in the background, print its id\n"
		"  wait JOB                    wait until a job ends, exit with its status\n"
		"  attach JOB                  show a job's output (recent output first)\n"
		"  kill JOB [--signal SIG]     signal a job's process tree (default TERM)\n"
		"  list [--running]            list the daemon's jobs\n"
		"  stats                       daemon statistics\n"
		"  watch-port PORT             wait until something listens on a TCP port\n"
		"  watch-file PATH             wait for a change of a file\n"
		"  watches                     list every watch of the daemon, by client\n"
		"  put LOCAL REMOTE            copy a file or directory to the node(s)\n"
		"  get REMOTE LOCALDIR         copy one from each node to LOCALDIR/<node>/\n"
		"  help [COMMAND]              help on a command (same as ctl COMMAND --help)\n"
		"\n"
		"Options (also accepted after the command name):\n"
		"  -S, --socket PATH        the daemon's unix socket; default $CTLD_SOCKET, else\n"
		"                           " CLI_DEFAULT_SOCKET "\n"
		"  -H, --host HOST:PORT,... daemons over TCP (port " CLI_DEFAULT_PORT
		" if omitted; [::1]:7878\n"
		"                           for IPv6); default $CTLD_HOST, which wins over\n"
		"                           $CTLD_SOCKET. Several hosts: the command runs on\n"
		"                           each, concurrently; lines are prefixed HOST:PORT\n"
		"                           A node set in ClusterShell's syntax: node[1-64],\n"
		"                           r[1-2]n[01-10/2]:7979, gw1:7979,127.0.0.1:[7001-7016]\n"
		"                           (a port is part of a node's name), or @FILE: one\n"
		"                           set per line, # comments. Each node once, at most\n"
		"                           65536; IPv6 only as [ADDR6]:PORT entries\n"
		"      --fanout N           at most N connections at once (64; the others wait)\n"
		"  -b, --gather             print each node's output at the end, identical ones\n"
		"                           once under their folded node set (as clush -b;\n"
		"                           stdout only, at most 64 KiB per node)\n"
		"      --summary            at the end, node sets per exit status or failure\n"
		"                           on stderr; exit with the largest status\n"
		"      --timeline FILE      write every node's events on one time axis (each\n"
		"                           node's clock offset measured by round trips) as\n"
		"                           Chrome/Perfetto trace JSON; draw it with\n"
		"                           python3 -m ctld.timeline FILE --png OUT\n"
		"      --json               one JSON object per line per event or result\n"
		"      --tls-cert FILE      mutual TLS over TCP: this client's certificate,\n"
		"      --tls-key FILE       its key,\n"
		"      --tls-ca FILE        and the CA that signed the daemons' certificates\n"
		"      --tls-session-cache DIR|none  keep the daemons' TLS session tickets\n"
		"                           here, so the next ctl resumes instead of a full\n"
		"                           handshake (default $XDG_RUNTIME_DIR/ctld/tls-sessions,\n"
		"                           else ~/.cache/ctld/tls-sessions)\n"
		"      --connect-timeout DUR  give up on a daemon that does not answer (5s)\n"
		"      --liveness DUR       give up on a daemon that falls silent for DUR (30s;\n"
		"                           default $CTLD_LIVENESS; 0: wait for ever); ctl\n"
		"                           sends a Ping after DUR/3 without a word from it\n"
		"  -h, --help               this text      --version   ctl's version\n"
		"\n"
		"Exit status:\n"
		"  run, wait, attach: the job's exit status, or 128+N when signal N killed it\n"
		"  0 done   1 the daemon refused the request   64 usage error\n"
		"  69 a daemon does not answer: it cannot be reached, or fell silent for\n"
		"     --liveness (ctl names the node and what it was doing there)\n"
		"  76 protocol error (daemon closed or sent garbage)\n"
		"  124 a --timeout ran out   127 the program could not be executed\n"
		"  120-123 not ready (--wait-*): 120 someone else holds the port, 121 the\n"
		"  job's listen() failed, 122 a --wait-file cannot be watched, 123 the job\n"
		"  ended first\n"
		"  130 interrupted (Ctrl-C)   143 / 129 left on SIGTERM / SIGHUP\n"
		"  141 ctl's output was closed (broken pipe)\n"
		"  put, get: 65 what arrived does not match the daemon's sha256, 66 LOCAL\n"
		"  cannot be read, 73 LOCALDIR cannot be written\n"
		"  With several hosts: the status of the first host (in -H order) that failed;\n"
		"  with --summary the largest.\n"
		"\n"
		"Examples:\n"
		"  ctl run -- make -j4          build here (the job runs in ctl's directory)\n"
		"  echo hi | ctl run -- cat     stdin is forwarded when it is not a terminal\n"
		"  ctl run --timeout 30s -- ./slow-test\n"
		"  ctl run --wait-port 8080 -- python3 -m http.server 8080\n"
		"                                      start a server; return once it listens\n"
		"  ctl start --wait-port 6379 --wait-log 'Ready to accept' -- sh -c redis-server\n"
		"  ctl -H 10.0.0.1,10.0.0.2 run -- uname -r\n"
		"  ctl -H 'node[1-64]' -b --summary run -- uname -r\n"
		"                                      one block per distinct output, then a\n"
		"                                      table such as \"exit 0: node[1-63] (63)\"\n"
		"  ctl list --running && ctl kill 3 --signal KILL\n",
	},
	[CLI_HELP] = {
		"help",
		"usage: ctl help [COMMAND]\n",
		"Shows the help of ctl or of one command (same as ctl COMMAND --help).\n"
		"\n"
		"Example:\n"
		"  ctl help run\n",
	},
	[CLI_VERSION] = { "version", "usage: ctl --version\n", "Prints ctl's version.\n" },
	[CLI_RUN] = {
		"run",
		"usage: ctl run [OPTIONS] [--] PROGRAM [ARGS...]\n",
		"Runs PROGRAM on the daemon's machine and shows its output live: the job's\n"
		"stdout on ctl's stdout, its stderr on ctl's stderr. Exits with the job's status\n"
		"(128+N when signal N killed it, 127 when it could not be executed).\n"
		"On the unix socket the job runs in ctl's current directory unless --cwd says\n"
		"otherwise (so `ctl run -- make` builds here); over TCP it runs in / by default.\n"
		"Ctrl-C sends SIGINT to the job's whole tree and keeps waiting; a second Ctrl-C\n"
		"detaches (exit 130) and leaves the job running. SIGTERM and SIGHUP are sent\n"
		"to the job's tree too, but ctl then waits at most 2s for the job to end\n"
		"(reporting its status) and leaves, even when the daemon does not answer\n"
		"(exit 143 / 129): with --kill-on-disconnect the daemon then kills what is\n"
		"left of the job, without it the job keeps running. A second signal ends ctl\n"
		"at once. So `timeout 60 ctl run ...` always ends.\n"
		"A node that falls silent for --liveness (30s; cut off, its daemon stopped or\n"
		"hung) is given up: ctl names it and the job it ran there, still reports the\n"
		"other nodes, and exits 69 (the job's state on that node is unknown).\n"
		"\n"
		"Options:\n"
		"      --name NAME          label shown by `ctl list`\n"
		"  -C, --cwd DIR            working directory of the job\n"
		"  -e, --env KEY=VALUE      set a variable (repeatable)\n"
		"      --clean-env          start from an empty environment, not the daemon's\n"
		"  -t, --timeout DUR        kill the job's tree after DUR (250ms, 10s, 2m, 1h)\n"
		"                           and exit 124; with --wait-*: how long to wait\n"
		"                           for readiness\n"
		"      --stdout FILE        append the job's stdout to FILE (on the daemon's\n"
		"      --stderr FILE        machine; relative to the job's directory)\n"
		"      --user USER          run as USER (name or uid)\n"
		"      --group GROUP        primary group (name or gid)\n"
		"      --rlimit RES=SOFT[:HARD]\n"
		"                           resource limit (repeatable): nofile, nproc, core,\n"
		"                           as, cpu, fsize, stack, memlock, data, nice; values\n"
		"                           are numbers (64K, 1G) or unlimited; HARD defaults\n"
		"                           to SOFT (nproc: not for a job running as root,\n"
		"                           whom it does not bind; use --max-procs)\n"
		"      --max-procs N        at most N processes (threads count) in the job's\n"
		"                           tree at once, for any user: a pids cgroup of its own\n"
		"      --umask OCTAL        e.g. 022\n"
		"      --stdin, --no-stdin  forward ctl's stdin to the job, or not; by default\n"
		"                           it is forwarded when it is not a terminal\n"
		"      --kill-on-disconnect kill the job's tree if ctl goes away (exits, is\n"
		"                           killed, leaves on SIGTERM, loses the connection)\n"
		"      --wait-tree          the job ends when its whole process tree has\n"
		"                           exited and all its output is in, like ssh; by\n"
		"                           default it ends with its main process, and what\n"
		"                           processes left behind write later is discarded\n"
		"\n"
		"Readiness: with any --wait-* option, ctl returns (exit 0, printing the job id\n"
		"and, on stderr, what made it ready and when) as soon as every condition holds,\n"
		"leaving the job running; the conditions follow the job's whole process tree,\n"
		"so `sh -c 'server &'` and servers that daemonize work. If it cannot become\n"
		"ready, ctl says why, the job's tree is killed (unless --keep-running) and the\n"
		"exit status tells: 120 the port is held by another process, 121 the job's\n"
		"listen() failed, 122 a --wait-file cannot be watched, the job's own status\n"
		"when it ended first (123 if that was 0), 124 --timeout ran out.\n"
		"      --wait-port PORT[@ADDR]\n"
		"                           a process of the job listens on TCP port PORT (on\n"
		"                           ADDR or a wildcard address, when given); a\n"
		"                           listener of anyone else does not count\n"
		"      --wait-log REGEX     a line of its stdout or stderr matches REGEX (POSIX\n"
		"                           extended)\n"
		"      --wait-file PATH[:SIZE]\n"
		"                           PATH exists (relative to the job's directory) and\n"
		"                           has at least SIZE bytes (e.g. out.log:1K)\n"
		"      --wait-size SIZE     the same SIZE, for the --wait-file before it\n"
		"      --wait-any           one condition is enough (default: all of them)\n"
		"      --keep-running, --keep-on-timeout\n"
		"                           do not kill the job when it cannot become ready\n"
		"\n"
		"Examples:\n"
		"  ctl run -- make -j4\n"
		"  ctl run -e RUST_LOG=debug --timeout 5m -- cargo test\n"
		"  ctl run --rlimit nofile=65536 --user nobody -- ./server\n"
		"  timeout 10m ctl -H n1,n2,n3 --liveness 10s run --kill-on-disconnect -- ./bench\n"
		"  ctl run --max-procs 64 -- make -j8\n"
		"  seq 10 | ctl run -- sort -n -r\n"
		"  ctl run --wait-port 8080 --timeout 20s -- python3 -m http.server 8080\n"
		"  ctl start --wait-log 'server listening' --wait-port 11211@127.0.0.1 -- \\\n"
		"      sh -c 'exec memcached -vv -l 127.0.0.1 -u nobody'\n",
	},
	[CLI_START] = {
		"start",
		"usage: ctl start [OPTIONS] [--] PROGRAM [ARGS...]\n",
		"Starts PROGRAM in the background and prints its job id once it runs (exit 0),\n"
		"or exits 127 when it could not be executed. Use `ctl wait`, `ctl attach`,\n"
		"`ctl kill` with the id. Options are those of `ctl run` (see ctl run --help),\n"
		"except --stdin and --kill-on-disconnect: the job's stdin is /dev/null.\n"
		"\n"
		"Examples:\n"
		"  job=$(ctl start --name web -- python3 -m http.server 8080)\n"
		"  ctl start --wait-port 8080 -- python3 -m http.server 8080\n"
		"  ctl start --stdout /tmp/build.log -- make\n",
	},
	[CLI_WAIT] = {
		"wait",
		"usage: ctl wait JOB\n",
		"Waits until job JOB ends and exits with its status (128+N for signal N, 127\n"
		"if it could not be executed). Works for jobs that have already ended.\n"
		"Ctrl-C stops waiting (exit 130); the job is not touched.\n"
		"\n"
		"Example:\n"
		"  job=$(ctl start -- make) && ctl wait \"$job\" && echo built\n",
	},
	[CLI_ATTACH] = {
		"attach",
		"usage: ctl attach [--no-backlog] JOB\n",
		"Shows job JOB's output: the recent output the daemon kept, then live output\n"
		"until it ends; exits with its status. Ctrl-C detaches (exit 130) and never\n"
		"kills the job.\n"
		"\n"
		"Options:\n"
		"      --no-backlog         only new output\n"
		"\n"
		"Example:\n"
		"  ctl attach 3\n",
	},
	[CLI_KILL] = {
		"kill",
		"usage: ctl kill [--signal SIG] [--grace DUR | --main-only] JOB\n",
		"Sends a signal to job JOB: to its whole process tree, or only to its main\n"
		"process with --main-only. With --grace, a stopped tree is continued so it can\n"
		"act on the signal, ctl waits for the job to end, and whatever is left of its\n"
		"tree after DUR is killed with SIGKILL; ctl says which ended it (exit 0 once\n"
		"the job is gone).\n"
		"\n"
		"Options:\n"
		"  -s, --signal SIG         TERM (default), KILL, SIGINT, hup, 9, ...\n"
		"      --grace DUR          SIGKILL what is left after DUR (250ms, 10s, ...)\n"
		"      --main-only          only the job's main process\n"
		"\n"
		"Examples:\n"
		"  ctl kill 3\n"
		"  ctl kill --grace 5s 3        TERM, then KILL after 5 s if needed\n"
		"  ctl kill --signal KILL 3\n",
	},
	[CLI_LIST] = {
		"list",
		"usage: ctl list [--running]\n",
		"Lists the daemon's jobs (running ones and recently finished ones):\n"
		"JOB PID STATE NAME STARTED (local time) EXIT COMMAND.\n"
		"\n"
		"Options:\n"
		"  -r, --running            only running jobs\n"
		"\n"
		"Examples:\n"
		"  ctl list\n"
		"  ctl --json list --running\n",
	},
	[CLI_WATCHES] = {
		"watches",
		"usage: ctl watches\n",
		"Lists every port and file watch of the daemon with the client that owns it:\n"
		"WATCH KIND CLIENT WHAT (port or path) OPTIONS.\n"
		"\n"
		"Example:\n"
		"  ctl watches\n",
	},
	[CLI_STATS] = {
		"stats",
		"usage: ctl stats\n",
		"Prints the daemon's counters as key: value lines (--json: one object): uptime,\n"
		"clients, jobs, watches, eBPF status, ring-buffer events and drops, ...\n"
		"\n"
		"Example:\n"
		"  ctl stats\n",
	},
	[CLI_WATCH_PORT] = {
		"watch-port",
		"usage: ctl watch-port [--timeout DUR] [--addr ADDR] [--netns NS] PORT\n",
		"Waits until a process listens on TCP port PORT (at once if one already does),\n"
		"prints \"port PORT is listening: pid PID (COMM) on ADDR\" and exits 0; exits 124\n"
		"when --timeout runs out first.\n"
		"\n"
		"Options:\n"
		"  -t, --timeout DUR        give up after DUR (250ms, 10s, 2m)\n"
		"      --addr ADDR          only a listener on this address (or the wildcard)\n"
		"      --netns NS           in this network namespace: a name (ip netns) or a\n"
		"                           path such as /proc/PID/ns/net\n"
		"\n"
		"Example:\n"
		"  ctl watch-port --timeout 30s 5432 && psql ...\n",
	},
	[CLI_WATCH_FILE] = {
		"watch-file",
		"usage: ctl watch-file [--events LIST] [--size BYTES] [--timeout DUR] [--follow]\n"
		"                      PATH\n",
		"Waits for a change of PATH on the daemon's machine, prints\n"
		"\"PATH: KIND (size N)\" and exits 0; exits 124 when --timeout runs out first.\n"
		"A relative PATH is relative to ctl's directory on the unix socket.\n"
		"\n"
		"Options:\n"
		"      --events LIST        comma-separated: created, modified, closed_write,\n"
		"                           deleted, moved, attrib (default: all of them)\n"
		"      --size BYTES         fire once the file has at least BYTES (64K, 10M);\n"
		"                           alone, it waits only for that\n"
		"  -t, --timeout DUR        give up when nothing happened within DUR\n"
		"  -f, --follow             keep printing events until Ctrl-C\n"
		"\n"
		"Examples:\n"
		"  ctl watch-file --size 1M /var/log/app.log\n"
		"  ctl watch-file --events created,moved --timeout 1m /srv/ready\n"
		"  ctl watch-file --follow /etc/hosts\n",
	},
	[CLI_PUT] = {
		"put",
		"usage: ctl put [--user U] LOCAL REMOTE\n",
		"Copies LOCAL, a file or a directory with everything below it, to REMOTE on\n"
		"each node (-H). REMOTE is the new name; ending in /, it is the directory to\n"
		"copy into. %h in REMOTE is the node's name. Each file is written under a\n"
		"temporary name beside REMOTE and renamed once complete, synced and its\n"
		"SHA-256 checked, with its mode and mtime: a reader sees the old file or the\n"
		"new one, never a part. An interrupted put run again resumes where the\n"
		"daemon stopped writing, once the SHA-256 of what it has is that of LOCAL's\n"
		"start. Symbolic links and special files below LOCAL are skipped. The\n"
		"progress shows on a terminal. REMOTE must be absolute over TCP (on the unix\n"
		"socket, relative to ctl's directory).\n"
		"\n"
		"Options:\n"
		"      --user U             write as user U (name or uid): its rights, its\n"
		"                           ownership (default: the daemon's, root)\n"
		"\n"
		"Exit status: 0 done, 1 the daemon refused (no such directory, permission,\n"
		"disk full: the message says), 66 LOCAL cannot be read.\n"
		"\n"
		"Examples:\n"
		"  ctl -H n1,n2 put ./build/server /opt/bin/server\n"
		"  ctl -H n1,n2 put conf/ /etc/app/\n"
		"  ctl -H n1,n2 put data-%h.csv /srv/data.csv\n",
	},
	[CLI_GET] = {
		"get",
		"usage: ctl get [--user U] REMOTE LOCALDIR\n",
		"Copies REMOTE, a file or a directory with everything below it, from each\n"
		"node (-H) to LOCALDIR/<node>/<name of REMOTE> (<node>: the host as given to\n"
		"-H, with :PORT unless it is 7878; this machine's name on the unix socket).\n"
		"%h in REMOTE or LOCALDIR is the node's name; LOCALDIR is made if needed.\n"
		"Each file is written under a temporary name and renamed once complete,\n"
		"synced and its SHA-256 equal to the daemon's, with its mode and mtime. The\n"
		"daemon reads only as fast as ctl writes. The progress shows on a terminal.\n"
		"\n"
		"Options:\n"
		"      --user U             read as user U (name or uid): its rights\n"
		"\n"
		"Exit status: 0 done, 1 the daemon refused (no such file, permission: the\n"
		"message says), 65 what arrived does not match the daemon's sha256,\n"
		"73 LOCALDIR cannot be written.\n"
		"\n"
		"Examples:\n"
		"  ctl -H n1,n2 get /var/log/app.log results/    results/n1/app.log, ...\n"
		"  ctl -H n1,n2 get /srv/run-%h/ results/\n",
	},
};

const char *cli_cmd_name(enum cli_cmd cmd)
{
	return cmd < CLI_NCMDS ? cmd_texts[cmd].name : "?";
}

const char *cli_usage(enum cli_cmd cmd)
{
	return cmd_texts[cmd < CLI_NCMDS ? cmd : CLI_NONE].usage;
}

const char *cli_help(enum cli_cmd cmd)
{
	return cmd_texts[cmd < CLI_NCMDS ? cmd : CLI_NONE].help;
}

