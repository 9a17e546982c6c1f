#!/usr/bin/env bash
# `sipwarden user ...` from the outside: passwords refused or stored as HA1s only, the user
# list, show, passwd, remove, import (all or nothing) and exit codes.
# Usage: user.sh SIPWARDEN_BINARY SOURCE_DIR
set -uo pipefail
bin=$1 src=$2
fails=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
has() { grep -qE -- "$2" <<<"$1"; }        # has TEXT REGEX
lacks() { ! grep -qE -- "$2" <<<"$1"; }    # lacks TEXT REGEX
lacks_text() { ! grep -qF -- "$2" <<<"$1"; }  # lacks TEXT STRING (a password, not a regex)
# Whether any file of the data dir (database, WAL, journal) holds the bytes.
in_store() { grep -rqaF -- "$1" "$data"; }
not_in_store() { ! in_store "$1"; }
md5_ha1() { printf '%s' "$1:$realm:$2" | md5sum | cut -d' ' -f1; }
sha256_ha1() { printf '%s' "$1:$realm:$2" | sha256sum | cut -d' ' -f1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
data=$tmp/data realm=users.test.example
cfg=$tmp/sipwarden.toml
cat >"$cfg" <<EOF
[server]
domain = "$realm"
data_dir = "$data"
EOF
export SIPWARDEN_COMMON_PASSWORDS=$src/data/common-passwords.txt
sw() { "$bin" user "$@" --config "$cfg"; }   # sw ARGS... (stdout; stderr left alone)
run() {  # run STDIN ARGS...: sets out, err, code
  local input=$1; shift
  out=$("$bin" user "$@" --config "$cfg" <<<"$input" 2>"$tmp/err"); code=$?
  err=$(<"$tmp/err")
}

# ---- add with a strong password from stdin
strong='Tq7-vanilla-Rook-83x'
run "$strong" add alice --password-stdin
check "add --password-stdin with a strong password exits 0" test "$code" -eq 0
check "add does not print the password" lacks_text "$out$err" "$strong"
check "data dir created with mode 0700" test "$(stat -c %a "$data")" = 700
check "database file is <data_dir>/sipwarden.db" test -f "$data/sipwarden.db"
list=$(sw list)
check "list has a header" has "$(head -1 <<<"$list")" '^NAME +REQUIRE_TLS +BINDINGS$'
check "list shows alice, no TLS, 0 bindings" has "$list" '^alice +no +0$'
check "database holds no cleartext password" not_in_store "$strong"
check "database holds the MD5 HA1 of name:realm:password" in_store "$(md5_ha1 alice "$strong")"
check "database holds the SHA-256 HA1" in_store "$(sha256_ha1 alice "$strong")"

# CRLF line ending on stdin is not part of the password
run $'Wq4-orchid-Pylon-27z\r' add dave --password-stdin
check "--password-stdin strips CRLF" in_store "$(md5_ha1 dave 'Wq4-orchid-Pylon-27z')"

# ---- weak passwords: refused with the policy's reason, nothing stored
refused() {  # refused LABEL NAME PASSWORD REASON_REGEX
  local label=$1 name=$2 pw=$3 reason=$4
  run "$pw" add "$name" --password-stdin
  check "weak ($label): exit 1" test "$code" -eq 1
  check "weak ($label): reason given" has "$err" "password refused: .*($reason)"
  check "weak ($label): password not echoed" lacks_text "$out$err" "$pw"
  check "weak ($label): user not stored" lacks "$(sw list)" "^$name "
  check "weak ($label): no HA1 stored" not_in_store "$(md5_ha1 "$name" "$pw")"
}
refused "short" bob 'Xk9-pl' 'shorter|12'
refused "contains name" bob 'Zq8-xBoBx-Lm27' 'name'
refused "digits only" bob '804725193671' 'digit'
refused "keyboard walk" bob 'qwertyuiopas' 'keyboard|walk|run'
refused "common" bob 'baseball1234' 'common'
refused "no SIP-safe characters" bob 'Tq7 vanilla;Rook"83' 'character|space'

# ---- names
run "$strong" add 'bad name' --password-stdin
check "name with a space refused (exit 1)" test "$code" -eq 1
run "$strong" add "$(printf 'a%.0s' {1..65})" --password-stdin
check "name longer than 64 refused (exit 1)" test "$code" -eq 1
run "$strong" add 'x;y' --password-stdin
check "name with ';' refused" test "$code" -eq 1

# ---- existing name
run 'Other-Strong-9pass' add alice --password-stdin
check "add of an existing name exits 1" test "$code" -eq 1
check "add of an existing name says use user passwd" has "$err" 'already exists; use user passwd'
check "existing user's HA1 unchanged" in_store "$(md5_ha1 alice "$strong")"

# ---- --generate
run "" add gen1 --generate
check "add --generate exits 0" test "$code" -eq 0
check "generated password printed exactly once" test "$(grep -c '^password: ' <<<"$out")" -eq 1
generated=$(sed -n 's/^password: //p' <<<"$out")
check "generated password: 20 characters of the documented set" \
  has "$generated" '^[A-Za-z0-9._+=@%-]{20}$'
check "generated password is not on stderr" lacks_text "$err" "$generated"
check "generated password not stored in cleartext" not_in_store "$generated"
check "generated password's HA1 stored" in_store "$(md5_ha1 gen1 "$generated")"
run "$generated" add gen2 --password-stdin
check "the generated password passes the policy for another user" test "$code" -eq 0
out=$("$bin" user add --help); code=$?
check "--help says the generated password is shown once" has "$out" 'shown only this once'
"$bin" user add gen3 --generate --password-stdin --config "$cfg" </dev/null >/dev/null 2>&1
check "--generate with --password-stdin is a usage error (exit 2)" test $? -eq 2

# ---- no terminal and no flag
out=$("$bin" user add carol --config "$cfg" </dev/null 2>&1); code=$?
check "no TTY and no password flag: exit 2" test "$code" -eq 2
check "no TTY: message names --password-stdin and --generate" \
  has "$out" '--password-stdin.*--generate'
check "no TTY: nothing stored" lacks "$(sw list)" '^carol '
out=$("$bin" user passwd alice --config "$cfg" </dev/null 2>&1); code=$?
check "passwd with no TTY and no flag: exit 2" test "$code" -eq 2

# ---- the policy list must be found, never skipped
out=$(SIPWARDEN_COMMON_PASSWORDS=$tmp/missing.txt "$bin" user add erin --password-stdin \
  --config "$cfg" <<<"$strong" 2>&1); code=$?
check "missing common-password list: refused (exit 1)" test "$code" -eq 1
check "missing common-password list: nothing stored" lacks "$(sw list)" '^erin '

# Without the variable the list is found next to the binary or in the source tree.
out=$(env -u SIPWARDEN_COMMON_PASSWORDS "$bin" user add frank --password-stdin \
  --config "$cfg" <<<'Ud5-juniper-Moth-29r' 2>&1); code=$?
check "common-password list found without SIPWARDEN_COMMON_PASSWORDS" test "$code" -eq 0

# ---- passwd
new='Hj5-meadow-Crane-61w'
run "$new" passwd alice --password-stdin
check "passwd exits 0" test "$code" -eq 0
check "passwd stores the new HA1" in_store "$(md5_ha1 alice "$new")"
check "passwd stores no cleartext" not_in_store "$new"
run 'short1' passwd alice --password-stdin
check "passwd refuses a weak password" test "$code" -eq 1
run "$new" passwd nobody --password-stdin
check "passwd of an unknown user exits 1" test "$code" -eq 1

# ---- --require-tls, show
run 'Lm3-harbor-Quill-58k' add tls1 --password-stdin --require-tls
check "add --require-tls exits 0" test "$code" -eq 0
check "list shows require_tls yes" has "$(sw list)" '^tls1 +yes +0$'
out=$(sw show tls1); code=$?
check "show exits 0" test "$code" -eq 0
check "show reports require_tls" has "$out" '^require_tls: +yes$'
check "show reports the realm" has "$out" "^realm: +$realm\$"
check "show reports the bindings" has "$out" '^bindings: +0$'
check "show alice: require_tls no" has "$(sw show alice)" '^require_tls: +no$'
out=$(sw show nobody 2>&1); code=$?
check "show of an unknown user exits 1" test "$code" -eq 1
check "show of an unknown user says so" has "$out" 'no such user'

# ---- remove
out=$(sw remove dave); code=$?
check "remove exits 0" test "$code" -eq 0
check "removed user no longer listed" lacks "$(sw list)" '^dave '
out=$(sw remove dave 2>&1); code=$?
check "remove of an unknown user exits 1" test "$code" -eq 1

# ---- import
printf 'name,password\r\nimp1,Rv6-lantern-Moss-44q\r\n\nimp2,"Pc2-sparrow-Dune-95t"\nimp3,Gy8-copper-Fable-13n\n' \
  >"$tmp/good.csv"
out=$(sw import "$tmp/good.csv"); code=$?
check "import of a valid CSV exits 0" test "$code" -eq 0
check "import reports the count" has "$out" '^imported 3 users$'
list=$(sw list)
check "imported users are listed" \
  test "$(grep -cE '^imp[123] +no +0$' <<<"$list")" -eq 3
check "imported HA1 stored (quoted field unwrapped)" in_store "$(md5_ha1 imp2 'Pc2-sparrow-Dune-95t')"
check "imported passwords not stored in cleartext" not_in_store 'Rv6-lantern-Moss-44q'

printf 'imp4,Ks3-bramble-Vole-72d\nimp5,Nf9-thistle-Wren-36c\nimp6,imp6imp6imp6imp6\nimp7,Bd4-walnut-Heron-85p\n' \
  >"$tmp/weak.csv"
out=$(sw import "$tmp/weak.csv" 2>&1); code=$?
check "import with one weak row exits 1" test "$code" -eq 1
check "import reports the rejected row as line N: NAME: reason" has "$out" '^line 3: imp6: '
check "import reports only the rejected row" test "$(grep -c '^line ' <<<"$out")" -eq 1
check "import with a rejected row imports nothing" \
  test "$(grep -cE '^imp[4-7] ' <<<"$(sw list)")" -eq 0
check "rejected import leaks no password" lacks "$out" 'imp6imp6|Ks3-bramble'

printf 'imp8,Ks3-bramble-Vole-72d\nimp8,Nf9-thistle-Wren-36c\n' >"$tmp/dup.csv"
out=$(sw import "$tmp/dup.csv" 2>&1); code=$?
check "duplicate names in the file: exit 1" test "$code" -eq 1
check "duplicate reported on its line" has "$out" '^line 2: imp8: .*duplicate'
check "duplicate: nothing imported" lacks "$(sw list)" '^imp8 '

printf 'alice,Ks3-bramble-Vole-72d\nimp9,Nf9-thistle-Wren-36c\nbad name,Nf9-thistle-Wren-36c\n' \
  >"$tmp/exists.csv"
out=$(sw import "$tmp/exists.csv" 2>&1); code=$?
check "import of an existing user or bad name: exit 1" test "$code" -eq 1
check "existing user reported" has "$out" '^line 1: alice: already exists'
check "bad name reported" has "$out" '^line 3: '
check "nothing imported" lacks "$(sw list)" '^imp9 '

out=$(sw import "$tmp/none.csv" 2>&1); code=$?
check "import of a missing file exits 1" test "$code" -eq 1

# ---- usage
"$bin" user --config "$cfg" >/dev/null 2>&1
check "user without a subcommand: exit 2" test $? -eq 2
"$bin" user show >/dev/null 2>&1
check "show without NAME: exit 2" test $? -eq 2

echo "$fails failed"
exit $((fails > 0))
