#!/usr/bin/env bash
# Writes a one-user htpasswd file with a bcrypt hash, as docker-registry's
# htpasswd auth requires (it accepts bcrypt entries only).
#
#   tests/images/htpasswd.sh <file> <user> <password>
#
# The hash comes from the system's crypt(3) (libxcrypt, through perl-base, so
# no extra package is needed) with cost 5 and a random salt.
set -euo pipefail

PROG=htpasswd.sh
if [ $# -ne 3 ]; then
  echo "usage: $PROG <file> <user> <password>" >&2
  exit 2
fi
FILE=$1
USER_NAME=$2
PASSWORD=$3
case "$USER_NAME" in
  ""|*:*) echo "$PROG: error: user must be non-empty and contain no ':'" >&2; exit 1 ;;
esac
command -v perl >/dev/null || { echo "$PROG: error: perl not found" >&2; exit 1; }

HASH=$(BERTH_PW=$PASSWORD perl -e '
  my @a = ("." , "/", "A" .. "Z", "a" .. "z", "0" .. "9");
  open(my $r, "<", "/dev/urandom") or die "urandom: $!";
  read($r, my $bytes, 21) == 21 or die "urandom: short read";
  # 22 salt characters; the last one carries only 2 significant bits.
  my $salt = join("", map { $a[ord($_) % 64] } split(//, $bytes)) . (".", "O", "e", "u")[int(rand(4))];
  my $h = crypt($ENV{BERTH_PW}, "\$2b\$05\$" . $salt);
  defined $h && $h =~ /^\$2b\$05\$.{53}$/ or die "crypt(3) has no bcrypt support\n";
  print $h;
')
umask 077
printf '%s:%s\n' "$USER_NAME" "$HASH" > "$FILE.tmp"
chmod 0644 "$FILE.tmp"
mv "$FILE.tmp" "$FILE"
