#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# make_certs.sh - a throw-away CA and certificates for mutual TLS, for tests
# and first use (`make certs` writes them to $(BUILD)/certs).
#
#   usage: tests/make_certs.sh [--force] [DIR]      (DIR defaults to ./certs)
#
# Writes, with the openssl command (EC P-256 keys, SHA-256, valid 825 days):
#   ca.pem, ca.key          the CA: whoever holds a certificate it signed may
#                           control the daemon, so guard ca.key
#   server.pem, server.key  the daemon's certificate, SAN IP:127.0.0.1,
#                           IP:::1, DNS:localhost, extendedKeyUsage serverAuth
#   client.pem, client.key  a client certificate (CN=ctl), clientAuth
# Keys are mode 0600, certificates 0644, the directory 0700.
#
# Idempotent: files that already exist are kept (a certificate is never
# re-signed behind a running daemon's back); --force makes everything anew.
# A partly written set (say, a missing client key) is completed, re-signing
# only what is missing. Nothing here is meant for production: the CA key sits
# next to the certificates unencrypted.
set -eu

usage() {
	echo "usage: $0 [--force] [DIR]" >&2
	exit 64
}

force=0
dir=
for arg in "$@"; do
	case "$arg" in
	--force) force=1 ;;
	-h | --help)
		sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) usage ;;
	*)
		[ -z "$dir" ] || usage
		dir=$arg
		;;
	esac
done
[ -n "$dir" ] || dir=certs

command -v openssl >/dev/null 2>&1 || {
	echo "$0: the openssl command is needed (apt-get install openssl)" >&2
	exit 69
}

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
days=825
made=

if [ "$force" = 1 ]; then
	rm -f "$dir"/ca.pem "$dir"/ca.key "$dir"/ca.srl \
		"$dir"/server.pem "$dir"/server.key "$dir"/server.csr "$dir"/server.ext \
		"$dir"/client.pem "$dir"/client.key "$dir"/client.csr "$dir"/client.ext
fi

# new_key FILE: an EC P-256 private key, mode 0600.
new_key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	chmod 600 "$1"
}

# The CA. A new CA invalidates every certificate signed by the old one.
if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
	new_key "$dir/ca.key"
	openssl req -new -x509 -sha256 -days "$days" -key "$dir/ca.key" -out "$dir/ca.pem" \
		-subj "/CN=ctld-bpf throw-away CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 644 "$dir/ca.pem"
	rm -f "$dir/server.pem" "$dir/client.pem"
	made="$made ca"
fi

# issue NAME CN EXTENSIONS: NAME.key (kept if present) and NAME.pem signed by the CA.
issue() {
	name=$1 cn=$2 ext=$3
	if [ -s "$dir/$name.pem" ] && [ -s "$dir/$name.key" ]; then
		return 0
	fi
	[ -s "$dir/$name.key" ] || new_key "$dir/$name.key"
	openssl req -new -sha256 -key "$dir/$name.key" -subj "/CN=$cn" \
		-out "$dir/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$dir/$name.ext"
	openssl x509 -req -sha256 -days "$days" -in "$dir/$name.csr" \
		-CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
		-extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
	rm -f "$dir/$name.csr" "$dir/$name.ext"
	chmod 644 "$dir/$name.pem"
	made="$made $name"
}

issue server "ctld-bpf server" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
issue client "ctl" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

# Both certificates must verify against the CA, or nothing below is true.
openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" "$dir/client.pem" >/dev/null

if [ -n "$made" ]; then
	echo "made:$made"
else
	echo "kept the existing certificates (use --force to make new ones)"
fi
cat <<EOF
certificates in $dir:
  ca.pem                  the CA both sides trust (ca.key signs new clients: guard it)
  server.pem server.key   for ctld-bpf (SAN 127.0.0.1, ::1, localhost)
  client.pem client.key   for ctl and other clients

  ctld-bpf --listen 127.0.0.1:7878 \\
      --tls-cert $dir/server.pem --tls-key $dir/server.key --tls-ca $dir/ca.pem
  ctl -H 127.0.0.1:7878 \\
      --tls-cert $dir/client.pem --tls-key $dir/client.key --tls-ca $dir/ca.pem run -- id
EOF
