# shellcheck shell=bash
# Shared by the install tests: bundles, variants of them, assertions. Expects $T (a
# temporary directory the caller removes) and writes command output to $T/out.

newest_bundle() { ls dist/mesa-*-linux-"$(uname -m)".tar.gz 2>/dev/null | sort -V | tail -n 1; }
newest_deb() { ls dist/mesa_*_"$(dpkg --print-architecture)".deb 2>/dev/null | sort -V | tail -n 1; }

# bundle_field BUNDLE KEY: a line of the bundle's BUNDLE file (version, arch, depends).
bundle_field() { tar -xzOf "$1" --wildcards '*/BUNDLE' | sed -n "s/^$2=//p"; }

# variant BUNDLE DIR KEY=VALUE...: the bundle repacked with BUNDLE fields changed (and
# extra-file=PATH added; copy-links=1: each link in bin/ replaced by a copy of its target,
# as the bundles before the multi-call binary had), named and checksummed as package.sh
# would; prints its path.
variant() {
    local bundle=$1 dir=$2 change key value extra='' copy_links=0 link
    shift 2
    mkdir -p "$dir/x"
    tar -xzf "$bundle" -C "$dir/x"
    local top
    top=$(cd "$dir/x" && ls)
    for change in "$@"; do
        key=${change%%=*} value=${change#*=}
        if [[ $key == extra-file ]]; then extra=$value; continue; fi
        if [[ $key == copy-links ]]; then copy_links=$value; continue; fi
        sed -i "s|^$key=.*|$key=$value|" "$dir/x/$top/BUNDLE"
    done
    if [[ -n $extra ]]; then mkdir -p "$dir/x/$top/$(dirname "$extra")" && echo old >"$dir/x/$top/$extra"; fi
    if ((copy_links)); then
        for link in "$dir/x/$top"/bin/*; do [[ -L $link ]] && cp --remove-destination "$(readlink -f "$link")" "$link"; done
    fi
    local name
    name=mesa-$(sed -n 's/^version=//p' "$dir/x/$top/BUNDLE")-linux-$(sed -n 's/^arch=//p' "$dir/x/$top/BUNDLE")
    [[ $top == "$name" ]] || mv "$dir/x/$top" "$dir/x/$name"
    tar -C "$dir/x" -cf - "$name" | gzip -1 >"$dir/$name.tar.gz"   # fast: test bundles only
    (cd "$dir" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
    rm -rf "$dir/x"
    echo "$dir/$name.tar.gz"
}

fail() { echo "FAIL: $*" >&2; exit 1; }
fail_with_output() { cat "$T/out" >&2; fail "$@"; }
pass() { echo "ok: $*"; }
expect_output() { grep -qF -- "$1" "$T/out" || fail_with_output "output lacks: $1"; }
# expect_failure MESSAGE COMMAND...: the command exits non-zero and says MESSAGE.
expect_failure() {
    local message=$1 status=0
    shift
    "$@" >"$T/out" 2>&1 || status=$?
    ((status != 0)) || fail_with_output "succeeded, expected failure: $*"
    expect_output "$message"
}
# expect_nothing_in PREFIX: no file was installed there.
expect_nothing_in() {
    local files
    files=$(find "$1" \( -type f -o -type l \) 2>/dev/null || true)
    [[ -z $files ]] || fail "files were installed in $1: $files"
}
