// SPDX-License-Identifier: BSD-2-Clause
/*
 * values.c - parsers for ctl's option values: targets (node sets are
 * nodeset.c's), KEY=VALUE, rlimits, file event lists, job ids, ports,
 * durations, liveness, umasks and paths. Each
 * returns 0 or -EINVAL with a reason; none does I/O.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "ctl/args.h"

/* Copies an option value into a bounded protocol field, or says it is too long. */
int cli_set_str(char *dst, size_t cap, const char *val, const char *what, char *err,
		   size_t errlen)
{
	if (!copy_str(dst, cap, val))
		return errorf(err, errlen, -EINVAL, "%s is too long (at most %zu bytes)", what, cap - 1);
	return 0;
}

static int parse_one_target(const char *text, size_t len, struct cli_target *t, char *err,
			    size_t errlen)
{
	char item[sizeof(t->name)];
	const char *host = item;
	bool bracketed;
	int ret = 0;

	if (len == 0 || len >= sizeof(item))
		return errorf(err, errlen, -EINVAL, "bad host '%.*s' (want HOST:PORT or [ADDR6]:PORT)",
			    (int)(len < 100 ? len : 100), text);
	memcpy(item, text, len);
	item[len] = '\0';
	bracketed = item[0] == '[' && item[len - 1] == ']';
	*t = (struct cli_target){ .is_unix = false };
	if (bracketed || !strchr(item, ':')) {
		/* no port: the daemon's default */
		if (bracketed) {
			item[len - 1] = '\0';
			host++;
		}
		ret = copy_str(t->host, sizeof(t->host), host) && *host ? 0 : -EINVAL;
		copy_str(t->port, sizeof(t->port), CLI_DEFAULT_PORT);
		if (bracketed)
			item[len - 1] = ']';
	} else {
		ret = split_host_port(item, t->host, sizeof(t->host), t->port, sizeof(t->port));
	}
	if (ret || strpbrk(t->host, "[] \t") ||
	    cli_parse_port(t->port, &(uint16_t){ 0 }, err, errlen))
		return errorf(err, errlen, -EINVAL, "bad host '%s' (want HOST:PORT or [ADDR6]:PORT)", item);
	snprintf(t->name, sizeof(t->name), strchr(t->host, ':') ? "[%s]:%s" : "%s:%s", t->host,
		 t->port);
	return 0;
}

int cli_targets_of(struct nodeset *ns, struct cli_target *out, size_t max, size_t *n,
		   char *err, size_t errlen)
{
	if (nodeset_unique(ns))
		return errorf(err, errlen, -EINVAL, "out of memory for the node set");
	for (size_t i = 0; i < ns->count; i++) {
		if (*n == max)
			return errorf(err, errlen, -EINVAL, "too many hosts (at most %zu)", max);
		if (parse_one_target(ns->names[i], strlen(ns->names[i]), &out[*n], err, errlen))
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

int cli_parse_targets(const char *list, struct cli_target *out, size_t max, size_t *n,
		      char *err, size_t errlen)
{
	struct nodeset ns = { 0 };
	int ret = nodeset_add(&ns, list, err, errlen);

	if (ret == -ENOMEM)
		ret = errorf(err, errlen, -EINVAL, "out of memory for the node set");
	if (!ret)
		ret = cli_targets_of(&ns, out, max, n, err, errlen);
	nodeset_free(&ns);
	return ret;
}

int cli_check_env(const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv)
		return errorf(err, errlen, -EINVAL, "--env wants KEY=VALUE, not '%s'", kv);
	return 0;
}

static const char *const rlimit_names[] = { "nofile", "nproc", "core",    "as",   "cpu",
					    "fsize",  "stack", "memlock", "data", "nice" };

static int parse_rlimit_value(const char *text, uint64_t *v)
{
	if (strcmp(text, "unlimited") == 0 || strcmp(text, "infinity") == 0) {
		*v = UINT64_MAX; /* RLIM_INFINITY */
		return 0;
	}
	return parse_size(text, v);
}

int cli_parse_rlimit(const char *spec, ctld_Rlimit *out, char *err, size_t errlen)
{
	char buf[128], *eq, *colon;
	size_t i;

	if (!copy_str(buf, sizeof(buf), spec) || !(eq = strchr(buf, '=')))
		return errorf(err, errlen, -EINVAL, "--rlimit wants RES=SOFT[:HARD], not '%s'", spec);
	*eq = '\0';
	for (i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(buf, rlimit_names[i]) == 0)
			break;
	if (i == ARRAY_SIZE(rlimit_names))
		return errorf(err, errlen, -EINVAL,
			    "--rlimit: unknown resource '%s' (nofile, nproc, core, as, cpu, "
			    "fsize, stack, memlock, data, nice)",
			    buf);
	*out = (ctld_Rlimit)ctld_Rlimit_init_zero;
	copy_str(out->resource, sizeof(out->resource), buf);
	colon = strchr(eq + 1, ':');
	if (colon)
		*colon = '\0';
	if (parse_rlimit_value(eq + 1, &out->soft) ||
	    parse_rlimit_value(colon ? colon + 1 : eq + 1, &out->hard))
		return errorf(err, errlen, -EINVAL,
			    "--rlimit %s: bad value in '%s' (a number, 64K, 1G or unlimited)",
			    buf, spec);
	if (out->soft > out->hard)
		return errorf(err, errlen, -EINVAL, "--rlimit %s: soft limit is above the hard limit", buf);
	return 0;
}

static const struct {
	const char *name;
	uint32_t kind;
} file_events[] = {
	{ "created", ctld_FileEventKind_FILE_CREATED },
	{ "modified", ctld_FileEventKind_FILE_MODIFIED },
	{ "closed_write", ctld_FileEventKind_FILE_CLOSED_WRITE },
	{ "deleted", ctld_FileEventKind_FILE_DELETED },
	{ "moved", ctld_FileEventKind_FILE_MOVED },
	{ "attrib", ctld_FileEventKind_FILE_ATTRIB },
	/* not accepted by --events (--size asks for it); named for output */
	{ "size_reached", ctld_FileEventKind_FILE_SIZE_REACHED },
	{ "overflow", ctld_FileEventKind_FILE_OVERFLOW },
};

#define SELECTABLE_FILE_EVENTS 6

const char *cli_file_event_name(uint32_t kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(file_events); i++)
		if (file_events[i].kind == kind)
			return file_events[i].name;
	return "unknown";
}

int cli_parse_events(const char *list, uint32_t *kinds, char *err, size_t errlen)
{
	const char *p = list;

	*kinds = 0;
	for (;;) {
		size_t len = strcspn(p, ","), i;

		for (i = 0; i < SELECTABLE_FILE_EVENTS; i++)
			if (strlen(file_events[i].name) == len &&
			    strncmp(p, file_events[i].name, len) == 0)
				break;
		if (i == SELECTABLE_FILE_EVENTS)
			return errorf(err, errlen, -EINVAL,
				    "--events: unknown event '%.*s' (created, modified, "
				    "closed_write, deleted, moved, attrib)",
				    (int)(len < 64 ? len : 64), p);
		*kinds |= file_events[i].kind;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int cli_parse_job(const char *text, uint64_t *job, char *err, size_t errlen)
{
	long v;

	if (parse_long(text, 1, LONG_MAX, &v))
		return errorf(err, errlen, -EINVAL, "bad job id '%s' (a number, as printed by start/list)",
			    text);
	*job = (uint64_t)v;
	return 0;
}

int cli_parse_port(const char *text, uint16_t *port, char *err, size_t errlen)
{
	long v;

	if (parse_long(text, 1, 65535, &v))
		return errorf(err, errlen, -EINVAL, "bad port '%s' (1..65535)", text);
	*port = (uint16_t)v;
	return 0;
}

int cli_parse_ready_port(const char *text, ctld_PortCondition *pc, char *err, size_t errlen)
{
	const char *at = strchr(text, '@');
	char port[8];
	uint16_t p = 0;
	uint8_t bin[16];

	if (at && (size_t)(at - text) >= sizeof(port))
		return errorf(err, errlen, -EINVAL, "bad port '%s' (PORT or PORT@ADDRESS)", text);
	copy_str(port, at ? (size_t)(at - text) + 1 : sizeof(port), text);
	if (cli_parse_port(at ? port : text, &p, err, errlen))
		return -EINVAL;
	pc->port = p;
	if (!at)
		return 0;
	if (inet_pton(AF_INET, at + 1, bin) != 1 && inet_pton(AF_INET6, at + 1, bin) != 1)
		return errorf(err, errlen, -EINVAL,
			      "bad address '%s' in --wait-port (an IPv4 or IPv6 address, e.g. "
			      "8080@127.0.0.1, 8080@::1)",
			      at + 1);
	return cli_set_str(pc->addr, sizeof(pc->addr), at + 1, "--wait-port's address", err,
			   errlen);
}

int cli_parse_timeout(const char *text, uint32_t *ms, char *err, size_t errlen)
{
	if (parse_duration_ms(text, ms) || *ms == 0)
		return errorf(err, errlen, -EINVAL, "bad duration '%s' (e.g. 250ms, 10s, 2m, 1h)", text);
	return 0;
}

int cli_parse_liveness(const char *text, uint32_t *ms, char *err, size_t errlen)
{
	if (strcmp(text, "off") == 0) {
		*ms = 0;
		return 0;
	}
	if (parse_duration_ms(text, ms) == 0 && (*ms == 0 || *ms >= CLI_MIN_LIVENESS_MS))
		return 0;
	return errorf(err, errlen, -EINVAL,
		      "bad liveness '%s' (at least %ums, e.g. 10s; 0 or off: wait for ever)", text,
		      CLI_MIN_LIVENESS_MS);
}

int cli_parse_umask(const char *text, uint32_t *mask, char *err, size_t errlen)
{
	uint32_t v = 0;

	if (!*text || strlen(text) > 4)
		goto bad;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '7')
			goto bad;
		v = v * 8 + (uint32_t)(*p - '0');
	}
	if (v > 0777)
		goto bad;
	*mask = v;
	return 0;
bad:
	return errorf(err, errlen, -EINVAL, "bad umask '%s' (octal, 000..777)", text);
}

bool cli_join_path(const char *dir, const char *path, char *out, size_t cap)
{
	int n;

	if (path[0] == '/' || !dir)
		return copy_str(out, cap, path);
	n = snprintf(out, cap, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", path);
	return n >= 0 && (size_t)n < cap;
}

