#!/usr/bin/env bash
# `sipwarden lint` from the outside: verdict lines, reasons and exit codes.
# Usage: lint.sh SIPWARDEN_BINARY SOURCE_DIR
set -uo pipefail
bin=$1 src=$2 corpus=$2/tests/conformance/rfc4475
fails=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

out=$("$bin" lint "$corpus/wsinv.dat" "$corpus/esc01.dat"); code=$?
check "all-valid files exit 0" test "$code" -eq 0
check "valid verdict printed per file" test "$(grep -c ': valid$' <<<"$out")" -eq 2

out=$("$bin" lint "$corpus/wsinv.dat" "$corpus/scalar02.dat"); code=$?
check "one invalid file exits 1" test "$code" -eq 1
check "invalid verdict names the reason" grep -q "scalar02.dat: invalid: .*CSeq" <<<"$out"
check "the valid one is still reported valid" grep -q "wsinv.dat: valid" <<<"$out"

out=$("$bin" lint "$src/no/such/file.sip"); code=$?
check "unreadable file exits 1" test "$code" -eq 1
check "unreadable file is named" grep -q "file.sip: unreadable:" <<<"$out"

# The whole corpus: one line per file, and the invalid ones are exactly the expected count.
out=$("$bin" lint "$corpus"/*.dat); code=$?
check "corpus: one line per file" test "$(wc -l <<<"$out")" -eq 49
check "corpus: exit 1 (it holds invalid messages)" test "$code" -eq 1

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n' >"$tmp/nocl.sip"
"$bin" lint "$tmp/nocl.sip" >/dev/null; code=$?
check "no Content-Length is fine in a datagram" test "$code" -eq 0
out=$("$bin" lint --stream "$tmp/nocl.sip"); code=$?
check "--stream requires Content-Length" grep -q "invalid: .*Content-Length" <<<"$out"

out=$("$bin" --help); code=$?
check "--help lists lint" grep -q "lint" <<<"$out"

echo "$fails failed"
exit $((fails > 0))
