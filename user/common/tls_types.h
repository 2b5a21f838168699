/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tls_types.h - the types tls.h (the calls) and tls_ops.h (the module's
 * table) share, so neither header includes the other.
 */
#ifndef CTLD_TLS_TYPES_H
#define CTLD_TLS_TYPES_H

struct tls_ctx;
struct tls_conn;

enum tls_role { TLS_SERVER, TLS_CLIENT };

#endif
