#!/usr/bin/env bash
# install.sh on this machine, no chroot: a fresh install, a reinstall, an upgrade in place,
# --uninstall, and each bad input (corrupt bundle, wrong architecture, no writable prefix,
# apt missing, /dev/fuse missing, bad options) failing with a clear message, a non-zero
# exit and no file installed. Runs as root (it needs unshare for the /dev/fuse case).
# Usage: bash tests/install/installer.sh [BUNDLE]   (default: the newest in dist/)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/install/lib.sh

bundle=${1:-$(newest_bundle)}
[[ -f $bundle ]] || { echo "no bundle: run bash scripts/package.sh first" >&2; exit 1; }
version=$(bundle_field "$bundle" version)
T=$(mktemp -d /tmp/mesa-installer-test.XXXXXX)
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT

# run_install PREFIX ARGS...: install.sh read from stdin, as `curl … | sh -s -- …` runs it.
run_install() { sh -s -- --yes "$@" <install.sh >"$T/out" 2>&1; }

echo "== fresh install, piped as curl | sh"
run_install --prefix "$T/p" --from "$bundle" || fail_with_output "install failed"
expect_output "installed mesa $version in $T/p"
expect_output "mesa mount -d -y"
[[ $("$T/p/bin/mesa" --version) == "$version" ]] || fail "mesa --version is not $version"
# One executable, bin/mesa; the other commands are relative symbolic links to it, each
# running its own command.
[[ -f $T/p/bin/mesa && ! -L $T/p/bin/mesa ]] || fail "bin/mesa is not a regular file"
for c in mesad mesa-client mesa-server; do
    [[ -L $T/p/bin/$c && $(readlink "$T/p/bin/$c") == mesa ]] || fail "bin/$c is not a link to mesa: $(ls -l "$T/p/bin/$c")"
    grep -qx "bin/$c" "$T/p/share/mesa/installed-files" || fail "manifest does not list bin/$c"
done
for c in mesad mesa mesa-client mesa-server; do
    "$T/p/bin/$c" --help | grep -q "USAGE: $c " || fail "bin/$c does not run $c"
done
for f in bin/mesad bin/mesa bin/mesa-client bin/mesa-server share/bash-completion/completions/mesa \
         share/zsh/site-functions/_mesa share/fish/vendor_completions.d/mesa.fish share/man/man1/mesa.1.gz \
         share/man/man1/mesa.mount.1.gz share/man/man1/mesad.1.gz share/man/man1/mesa-server.1.gz; do
    [[ -f $T/p/$f ]] || fail "$f was not installed"
done
grep -qx 'bin/mesad' "$T/p/share/mesa/installed-files" || fail "manifest does not list bin/mesad"
"$T/p/bin/mesad" --help >/dev/null || fail "installed mesad does not run"
bash -c "source $T/p/share/bash-completion/completions/mesa && complete -p mesa" >/dev/null || fail "bash completion does not load"
pass "installed $(grep -vc '^#' "$T/p/share/mesa/installed-files") files"

echo "== the same again: reinstalled in place, same files"
installed() { (cd "$1" && find . \( -type f -o -type l \) -printf '%p %y %l\n' | sort); }
before=$(installed "$T/p")
run_install --prefix "$T/p" --from "$(dirname "$bundle")" || fail_with_output "reinstall failed"
expect_output "reinstalled mesa $version"
[[ $(installed "$T/p") == "$before" ]] || fail "a reinstall changed the file set"
pass "reinstall"

echo "== an older version installed (four separate executables): upgraded in place, its leftovers removed"
old=$(variant "$bundle" "$T/old" version=0.0.1 extra-file=share/doc/mesa/OLD-ONLY copy-links=1)
run_install --prefix "$T/u" --from "$old" || fail_with_output "installing the old bundle failed"
[[ -f $T/u/share/doc/mesa/OLD-ONLY ]] || fail "old bundle's file missing"
[[ -f $T/u/bin/mesad && ! -L $T/u/bin/mesad ]] || fail "the old bundle's mesad is not a file of its own"
run_install --prefix "$T/u" --from "$bundle" || fail_with_output "upgrade failed"
expect_output "upgraded mesa 0.0.1 -> $version"
[[ ! -e $T/u/share/doc/mesa/OLD-ONLY ]] || fail "the upgrade left the old version's file behind"
[[ $(readlink "$T/u/bin/mesad") == mesa ]] || fail "the upgrade did not replace bin/mesad with a link"
"$T/u/bin/mesad" --version >/dev/null || fail "bin/mesad does not run after the upgrade"
grep -qx "# version=$version" "$T/u/share/mesa/installed-files" || fail "manifest not updated"
pass "upgrade 0.0.1 -> $version"

echo "== --uninstall removes exactly what was installed"
touch "$T/u/bin/someone-elses-tool"
sh install.sh --uninstall --prefix "$T/u" >"$T/out" 2>&1 || fail_with_output "uninstall failed"
expect_output "removed mesa $version"
[[ $(cd "$T/u" && find . \( -type f -o -type l \)) == "./bin/someone-elses-tool" ]] ||
    fail "uninstall left or removed the wrong files: $(cd "$T/u" && find . \( -type f -o -type l \))"
expect_failure "no mesa installation" sh install.sh --uninstall --prefix "$T/u"
pass "uninstall"

echo "== corrupt and truncated bundles: checksum mismatch"
mkdir "$T/bad" && cp "$bundle.sha256" "$T/bad/$(basename "$bundle").sha256"
head -c 100000 "$bundle" >"$T/bad/$(basename "$bundle")"
expect_failure "checksum mismatch" run_install --prefix "$T/n1" --from "$T/bad/$(basename "$bundle")"
expect_nothing_in "$T/n1"
cp "$bundle" "$T/bad/$(basename "$bundle")" && printf 'x' | dd of="$T/bad/$(basename "$bundle")" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_failure "checksum mismatch" run_install --prefix "$T/n1" --from "$T/bad/$(basename "$bundle")"
expect_nothing_in "$T/n1"
rm "$T/bad/$(basename "$bundle").sha256"
expect_failure "no checksum file" run_install --prefix "$T/n1" --from "$T/bad/$(basename "$bundle")"
pass "checksum"

echo "== a bundle for another architecture"
other=$(variant "$bundle" "$T/arch" arch=aarch64)
expect_failure "built for aarch64, this machine is $(uname -m)" run_install --prefix "$T/n2" --from "$other"
expect_nothing_in "$T/n2"
expect_failure "no mesa-*-linux-$(uname -m).tar.gz in" run_install --prefix "$T/n2" --from "$T/arch/"
pass "architecture"

echo "== no root and no writable prefix"
mkdir -p "$T/rootonly" && chmod 755 "$T/rootonly"
mkdir -m 1777 "$T/tmp"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent TMPDIR="$T/tmp" "$@"; }
expect_failure "cannot write to $T/rootonly" as_nobody sh install.sh --yes --prefix "$T/rootonly" --from "$bundle"
expect_failure "cannot write to /nonexistent/.local" as_nobody sh install.sh --yes --from "$bundle"
expect_nothing_in "$T/rootonly"
pass "no writable prefix"

echo "== not root, a writable HOME: installed under ~/.local"
mkdir -p "$T/home" && chown 65534:65534 "$T/home"
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T/home" TMPDIR="$T/tmp" PATH=/usr/bin:/bin \
    sh install.sh --yes --from "$bundle" >"$T/out" 2>&1 || fail_with_output "install as nobody failed"
expect_output "installed mesa $version in $T/home/.local"
expect_output "add $T/home/.local/bin to PATH"
[[ $(stat -c %U "$T/home/.local/bin/mesa") == nobody ]] || fail "$T/home/.local/bin/mesa is not the user's"
pass "user install"

echo "== from a URL (curl), by file and by directory + --version"
python3 -m http.server --bind 127.0.0.1 --directory "$(dirname "$bundle")" 0 >"$T/http.log" 2>&1 &
http_pid=$!
trap 'kill $http_pid 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 50); do port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$T/http.log"); [[ -n $port ]] && break; sleep 0.1; done
url=http://127.0.0.1:$port
run_install --prefix "$T/w1" --from "$url/$(basename "$bundle")" || fail_with_output "install from a URL failed"
expect_output "installed mesa $version"
run_install --prefix "$T/w2" --from "$url/" --version "$version" || fail_with_output "install from a URL directory failed"
expect_failure "--version is needed" run_install --prefix "$T/w3" --from "$url/"
expect_failure "could not download $url/mesa-9.9.9-linux-$(uname -m).tar.gz" run_install --prefix "$T/w3" --from "$url/" --version 9.9.9
expect_nothing_in "$T/w3"
pass "URL"

echo "== a missing package and no terminal to ask on, without --yes"
needs=$(variant "$bundle" "$T/needs" depends="libc6 mesa-test-no-such-package")
expect_failure "Pass --yes to install them" setsid sh install.sh --prefix "$T/n7" --from "$needs" </dev/null
expect_nothing_in "$T/n7"
pass "no terminal"

echo "== a missing package, apt-get not available / not root"
mkdir "$T/noapt"
for tool in /usr/bin/* /usr/sbin/* /bin/* /sbin/*; do
    case ${tool##*/} in apt | apt-get) ;; *) ln -sf "$tool" "$T/noapt/" ;; esac
done
expect_failure "apt-get is not available on $(. /etc/os-release && echo "$PRETTY_NAME") to install them: mesa-test-no-such-package" \
    env PATH="$T/noapt" sh install.sh --yes --prefix "$T/n3" --from "$needs"
expect_nothing_in "$T/n3"
mkdir -p "$T/n4" && chown 65534 "$T/n4"
expect_failure "sudo apt-get install mesa-test-no-such-package" as_nobody sh install.sh --yes --prefix "$T/n4" --from "$needs"
expect_nothing_in "$T/n4"
expect_failure "apt-get could not install mesa-test-no-such-package" run_install --prefix "$T/n3" --from "$needs"
expect_nothing_in "$T/n3"
pass "missing packages"

echo "== /dev/fuse missing (a container started without it)"
# A private mount namespace whose /dev holds only null, zero, urandom and tty.
without_fuse() {
    unshare -m --propagation private sh -c '
        mkdir -p "$0/olddev" && mount --bind /dev "$0/olddev" && mount -t tmpfs tmpfs /dev &&
        for n in null zero random urandom tty; do touch /dev/$n; mount --bind "$0/olddev/$n" /dev/$n; done &&
        umount -l "$0/olddev" && exec "$@"' "$T" "$@"
}
expect_failure "/dev/fuse is missing" without_fuse sh install.sh --yes --prefix "$T/n5" --from "$bundle"
expect_output "--device /dev/fuse"
expect_nothing_in "$T/n5"
without_fuse sh install.sh --yes --no-fuse-check --prefix "$T/n5" --from "$bundle" >"$T/out" 2>&1 ||
    fail_with_output "--no-fuse-check did not install"
expect_output "warning: /dev/fuse is missing"
pass "/dev/fuse"

echo "== bad options"
expect_failure "unknown option --frobnicate" sh install.sh --frobnicate
expect_failure "holds version $version, not 9.9.9" run_install --prefix "$T/n6" --from "$bundle" --version 9.9.9
expect_failure "no bundle given" env -u MESA_RELEASES_URL sh install.sh --yes --prefix "$T/n6"
expect_nothing_in "$T/n6"
pass "options"
echo "installer: all passed"
