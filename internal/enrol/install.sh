#!/bin/sh
# Optralis agent installer for Linux.
#
#   curl -fsSL '<API URL>/install.sh' | sudo sh -s -- '<install token>'
#
# It downloads the agent for this machine's architecture and checks its SHA-256, makes the
# agent's private key and a certificate request with openssl (the key never leaves this
# machine), enrols the machine with the install token, writes the certificate, key, CA and
# configuration with mode 0600 under /etc/optralis, and installs a systemd unit.
#
# It sends the SHA-256 of /etc/machine-id (never the id itself) as the machine's
# fingerprint: reinstalling on the same system takes its enrolled machine back instead of
# adding a duplicate.
#
# OPTRALIS_ROOT=/some/dir installs under that directory instead of / (packaging, tests):
# root is then not required and systemctl is not called.
set -eu

API_URL='@@API_URL@@'
DOWNLOAD_URL='@@DOWNLOAD_URL@@'

ROOT="${OPTRALIS_ROOT:-}"
CONF_DIR=/etc/optralis
BIN=/usr/local/bin/optralis-agent
UNIT=/etc/systemd/system/optralis-agent.service

say() { printf 'optralis: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

TOKEN="${1:-${OPTRALIS_TOKEN:-}}"
[ -n "$TOKEN" ] || die "usage: sh install.sh <install token> (create a token in the Optralis dashboard)"
case "$TOKEN" in
*[!A-Za-z0-9_=-]*) die "the install token contains unexpected characters: copy it again from the dashboard" ;;
esac
[ "${#TOKEN}" -eq 44 ] || die "an install token is 44 characters long: copy it again from the dashboard"

[ "$(uname -s)" = Linux ] || die "this installer is for Linux"
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
	die "run the installer as root (| sudo sh -s -- <token>)"
fi
case "$(uname -m)" in
x86_64 | amd64) ARCH=amd64 ;;
aarch64 | arm64) ARCH=arm64 ;;
armv7*) ARCH=armv7 ;;
i386 | i486 | i586 | i686) ARCH=386 ;;
*) die "unsupported architecture: $(uname -m)" ;;
esac
for cmd in curl openssl awk sed; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd is required: install it with your package manager"
done
if [ -e "$ROOT$CONF_DIR/agent.key" ]; then
	die "this machine is already enrolled ($ROOT$CONF_DIR/agent.key exists); remove $ROOT$CONF_DIR to enrol it again"
fi

umask 022
WORK=$(mktemp -d "${TMPDIR:-/tmp}/optralis.XXXXXX") || die "cannot create a temporary directory"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' HUP INT TERM
chmod 700 "$WORK"

# 1. The agent, checked against its published SHA-256, before anything is enrolled.
if [ -n "$DOWNLOAD_URL" ]; then
	url="$DOWNLOAD_URL/optralis-agent-linux-$ARCH"
	say "downloading the agent for $ARCH"
	curl -fsSL -o "$WORK/agent" "$url" || die "could not download $url"
	curl -fsSL -o "$WORK/agent.sha256" "$url.sha256" || die "could not download $url.sha256"
	want=$(cut -d ' ' -f 1 <"$WORK/agent.sha256")
	got=$(openssl dgst -sha256 -r "$WORK/agent" | cut -d ' ' -f 1)
	if [ -z "$want" ] || [ "$want" != "$got" ]; then
		die "the downloaded agent does not match its SHA-256: not installing it"
	fi
else
	say "the server has no agent download URL configured: enrolling without installing the agent binary"
fi

# 2. The agent's key and certificate request. The server sets every field of the
#    certificate itself; the subject here is ignored.
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/agent.key") 2>/dev/null ||
	die "openssl could not make a key"
openssl req -new -key "$WORK/agent.key" -subj "/CN=optralis-agent" -out "$WORK/agent.csr" 2>/dev/null ||
	die "openssl could not make a certificate request"

# 3. Enrolment.
json_string() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'; }
HOST=$(uname -n)
OS_VERSION=Linux
if [ -r /etc/os-release ]; then
	OS_VERSION=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"' | head -n 1)
	[ -n "$OS_VERSION" ] || OS_VERSION=Linux
fi
CSR_JSON=$(awk 'BEGIN { ORS = "\\n" } { print }' "$WORK/agent.csr")
FINGERPRINT_JSON=
if [ -r /etc/machine-id ]; then
	machine_id=$(tr -d ' \n' </etc/machine-id)
	# systemd writes "uninitialized" until first boot completes; an empty id is no identity.
	if [ -n "$machine_id" ] && [ "$machine_id" != uninitialized ]; then
		fp=$(printf '%s' "$machine_id" | openssl dgst -sha256 -r | cut -d ' ' -f 1)
		case "$fp" in
		*[!0-9a-f]* | '') ;;
		*) FINGERPRINT_JSON=",\"machine_fingerprint\":\"$fp\"" ;;
		esac
	fi
fi
printf '{"token":"%s","arch":"%s","hostname":"%s","os":"linux","os_version":"%s","csr":"%s"%s}\n' \
	"$TOKEN" "$ARCH" "$(json_string "$HOST")" "$(json_string "$OS_VERSION")" "$CSR_JSON" "$FINGERPRINT_JSON" >"$WORK/request.json"

say "enrolling $HOST with $API_URL"
status=$(curl -sS -o "$WORK/response.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "@$WORK/request.json" "$API_URL/api/public/bootstrap") || die "could not reach $API_URL"
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$WORK/response.json"; }
if [ "$status" != 201 ]; then
	die "enrolment refused (HTTP $status): $(field message)"
fi
pem() { field "$1" | awk '{ gsub(/\\n/, "\n"); printf "%s", $0 }'; }
pem certificate >"$WORK/agent.crt"
pem ca_chain >"$WORK/ca.crt"
MACHINE_ID=$(field machine_id)
CLIENT_ID=$(field client_id)
ENDPOINT=$(field agent_endpoint)
INTERVAL=$(sed -n 's/.*"interval_seconds":\([0-9]*\).*/\1/p' "$WORK/response.json")
for f in agent.crt ca.crt; do
	grep -q -- '-----BEGIN CERTIFICATE-----' "$WORK/$f" || die "the server's answer has no $f"
done
if [ -z "$MACHINE_ID" ] || [ -z "$ENDPOINT" ]; then
	die "the server's answer is incomplete"
fi

# 4. Files: certificate, key, CA and configuration, mode 0600 in a 0700 directory.
cat >"$WORK/agent.json" <<EOF
{
  "endpoint": "$ENDPOINT",
  "client_id": "$CLIENT_ID",
  "machine_id": "$MACHINE_ID",
  "cert_file": "$CONF_DIR/agent.crt",
  "key_file": "$CONF_DIR/agent.key",
  "ca_file": "$CONF_DIR/ca.crt",
  "heartbeat_interval_seconds": ${INTERVAL:-60}
}
EOF
(umask 077 && mkdir -p "$ROOT$CONF_DIR") || die "cannot create $ROOT$CONF_DIR"
chmod 700 "$ROOT$CONF_DIR"
for f in agent.key agent.crt ca.crt agent.json; do
	(umask 077 && cp "$WORK/$f" "$ROOT$CONF_DIR/$f.tmp") || die "cannot write $ROOT$CONF_DIR/$f"
	chmod 600 "$ROOT$CONF_DIR/$f.tmp"
	mv -f "$ROOT$CONF_DIR/$f.tmp" "$ROOT$CONF_DIR/$f"
done
say "enrolled as machine $MACHINE_ID; files in $ROOT$CONF_DIR"

# 5. The agent and its service.
if [ -s "$WORK/agent" ]; then
	mkdir -p "$ROOT${BIN%/*}"
	cp "$WORK/agent" "$ROOT$BIN.tmp"
	chmod 755 "$ROOT$BIN.tmp"
	mv -f "$ROOT$BIN.tmp" "$ROOT$BIN"
fi
mkdir -p "$ROOT${UNIT%/*}"
cat >"$ROOT$UNIT" <<EOF
[Unit]
Description=Optralis monitoring agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$BIN --config $CONF_DIR/agent.json
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
EOF
chmod 644 "$ROOT$UNIT"

if [ -n "$ROOT" ]; then
	say "installed under $ROOT: systemctl not called"
elif ! command -v systemctl >/dev/null 2>&1; then
	say "systemd not found: start $BIN --config $CONF_DIR/agent.json with your init system"
elif [ -x "$BIN" ]; then
	systemctl daemon-reload
	systemctl enable --now optralis-agent.service
	say "the agent is running (systemctl status optralis-agent)"
else
	systemctl daemon-reload
	say "the unit is installed; start it once $BIN is in place (systemctl enable --now optralis-agent)"
fi
