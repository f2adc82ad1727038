#!/usr/bin/env bash
# No result code is spelled outside the table: the library (src/util, model,
# core, loader, isolation) and the worker (src/worker) name violation and
# record codes only through the constants of CPEX_CODE_TABLE
# (include/cpex/codes.h), never as a string literal.
# Fails on
#   - a string literal where a code goes: the first argument of
#     cpex__violation_new / cpex__pipeline_violation, the code argument of
#     cpex__call_record, cpex__records_add, cpex__ex_take_violation and
#     deny_invoke, or an assignment to a `code` / `record_code` field;
#   - anywhere, a literal that spells a code of the table with an underscore
#     in it (one-word codes such as "error" are ordinary words too), except
#     the few listed below that mean something else.
# First it proves that it catches each of those in a planted file.
#   bash test_code_literals.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
src="$(cd "${2:-$(dirname "$0")/../..}" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# check TABLE_HEADER DIR...: prints each offence as file:line: what; exit 1 if any.
check() {
  perl - "$@" <<'PERL'
use strict;
use warnings;
my ($table, @dirs) = @ARGV;
open my $th, '<', $table or die "cannot read $table: $!\n";
my $t = do { local $/; <$th> };
my @codes = $t =~ /^\s*X\(\s*\w+,\s*\d+,\s*"([a-z_]+)"/mg;
die "found only " . scalar(@codes) . " codes in $table\n" if @codes < 10;
my %code = map { $_ => 1 } @codes;
# Literals that spell a code but mean something else: "file literal".
my %allowed = map { $_ => 1 } (
    "config_settings.c plugin_timeout",  # the YAML key plugin_settings.plugin_timeout
    "config_settings.c unknown_hook",    # the YAML key plugin_settings.unknown_hook
    "records.c not_initialized",         # execution record statuses (enum cpex_exec_status),
    "records.c not_started",             # named like the record codes they go with
);
my $str = qr/"(?:\\.|[^"\\\n])*"/;
my $arg = qr/(?:[^,()"]|\((?:[^()"]|$str)*\))*/;  # one argument without a literal
my @calls = (
    [qr/\bcpex__(?:violation_new|pipeline_violation)\s*\(\s*($str)/, "a literal code"],
    [qr/\b(?:cpex__call_record|cpex__ex_take_violation|deny_invoke)\s*\($arg,\s*($str)/,
     "a literal code"],
    [qr/\bcpex__records_add\s*\($arg,$arg,$arg,\s*($str)/, "a literal code"],
    [qr/(?:->|\.)(?:code|record_code)\s*=\s*($str)/, "a literal assigned to a code"],
);
my $bad = 0;
for my $dir (@dirs) {
    for my $file (sort glob("$dir/*.c"), sort glob("$dir/*.h")) {
        open my $fh, '<', $file or die "cannot read $file: $!\n";
        my $text = do { local $/; <$fh> };
        # Blank out comments, keeping strings and line numbers.
        $text =~ s{($str)|/\*.*?\*/|//[^\n]*}{
            defined $1 ? $1 : do { (my $c = $&) =~ tr/\n//cd; $c }
        }gse;
        my $base = $file =~ s{.*/}{}r;
        my $line_of = sub { 1 + (substr($text, 0, $_[0]) =~ tr/\n//) };
        for my $c (@calls) {
            my ($re, $what) = @$c;
            while ($text =~ /$re/g) {
                printf "%s:%d: %s %s\n", $file, $line_of->($-[1]), $what, $1;
                $bad++;
            }
        }
        while ($text =~ /"([a-z]+_[a-z_]+)"/g) {
            next unless $code{$1} && !$allowed{"$base $1"};
            printf "%s:%d: the code \"%s\" spelled out; use CPEX_CODE_%s\n", $file,
                   $line_of->($-[0]), $1, uc $1;
            $bad++;
        }
    }
}
exit($bad ? 1 : 0);
PERL
}

# The check catches what it should (a planted file), and passes clean code.
mkdir -p "$tmp/bad" "$tmp/good"
cat >"$tmp/bad/planted.c" <<'EOF'
void f(void)
{
    v = cpex__violation_new("whatever", "reason", NULL, NULL, NULL);
    cpex__call_record(cs, "error", "%s", msg);
    cpex__records_add(&r->errors, &r->error_count, p->name, "internal", "m", NULL);
    cpex__ex_take_violation(csp, "plugin_deny");
    out->record_code = "error";
    const char *c = "denied_write";
}
EOF
cat >"$tmp/good/clean.c" <<'EOF'
/* "plugin_deny" in a comment is fine */
void g(void)
{
    cpex__call_record(cs, CPEX_CODE_ERROR, "plugin said \"error\": %s", f(a, "b"));
    cpex__records_add(&r->errors, &r->error_count, name(x, "y"), CPEX_CODE_INTERNAL, "m", NULL);
    log("timeout");
}
EOF
status=0
planted="$(check "$src/include/cpex/codes.h" "$tmp/bad")"
found="$(grep -c . <<<"$planted")"
if [ "$found" -ne 7 ]; then
  echo "FAIL self-test: expected 7 offences in the planted file, found $found:"; echo "$planted"
  status=1
fi
if ! clean="$(check "$src/include/cpex/codes.h" "$tmp/good")"; then
  echo "FAIL self-test: clean code reported:"; echo "$clean"; status=1
fi

# The library itself.
if ! report="$(check "$src/include/cpex/codes.h" "$src/src/util" "$src/src/model" \
                 "$src/src/core" "$src/src/loader" "$src/src/isolation" "$src/src/worker")"; then
  echo "FAIL: result codes spelled outside CPEX_CODE_TABLE:"; echo "$report"; status=1
fi
[ "$status" -eq 0 ] && echo "ok: no result code spelled outside the table"
exit "$status"
