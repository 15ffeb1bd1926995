#!/usr/bin/env bash
# Release bundle and Debian package: builds the multi-call executable (mesad, mesa,
# mesa-client and mesa-server in one, see Sources/mesa-multicall) with the Swift runtime
# and Foundation linked statically, checks that only Debian system libraries remain
# dynamic, generates shell completions and man pages from the command definitions, and
# writes
#   dist/mesa-<version>-linux-<arch>.tar.gz (+ .sha256)   for install.sh
#   dist/mesa_<version>_<debarch>.deb (+ .sha256)         for apt-get install ./…
# Options: --skip-build (package what .build/release holds), --no-deb.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 deb=1
for arg in "$@"; do
    case $arg in
        --skip-build) build=0 ;;
        --no-deb) deb=0 ;;
        *) echo "usage: $0 [--skip-build] [--no-deb]" >&2; exit 2 ;;
    esac
done

commands=(mesad mesa mesa-client mesa-server)
flags=(-c release --static-swift-stdlib)
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/MesaDaemon/Daemon.swift)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "package.sh: no version in Sources/MesaDaemon/Daemon.swift" >&2; exit 1; }
arch=$(uname -m)
debarch=$(dpkg --print-architecture)

if ((build)); then
    for product in mesa-multicall generate-manual; do
        swift build "${flags[@]}" --product "$product" 2>&1 | grep -E 'error|warning: unre|Compiling|Build' | tail -3
    done
fi
bin=$(swift build "${flags[@]}" --show-bin-path)

# Only Debian's system libraries may stay dynamic (a Swift library here would mean the
# target needs a toolchain). Each library a binary names (DT_NEEDED) is mapped to the
# Debian package that ships it; apt brings their own dependencies.
allowed='^(libfuse3|libgit2|libcurl|libsqlite3|libssl|libcrypto|libz|libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux[-a-z0-9_]*)\.so'
declare -A packages=()
for lib in $(readelf -d "$bin/mesa-multicall" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    [[ $lib =~ $allowed ]] || { echo "package.sh: mesa-multicall links $lib, which is not a Debian system library" >&2; exit 1; }
    path=$(ldd "$bin/mesa-multicall" | awk -v lib="$lib" '$1 == lib && $3 ~ /^\// { print $3 } $1 ~ "/"lib"$" { print $1 }' | head -1)
    owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)
    [[ -n $owner ]] || { echo "package.sh: no Debian package ships $lib ($path)" >&2; exit 1; }
    owner=${owner%%:*}
    packages[$owner]=1
done
# fuse3 brings fusermount3, which an unprivileged mount needs; the library alone does not.
packages[fuse3]=1
depends=$(printf '%s\n' "${!packages[@]}" | sort | paste -sd' ')

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
name=mesa-$version-linux-$arch
root=$stage/$name
mkdir -p "$root/bin" "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" \
    "$root/share/fish/vendor_completions.d" "$root/share/man/man1" "$root/share/mesa/systemd"
# One executable, bin/mesa; mesad, mesa-client and mesa-server are relative symbolic links
# to it and it runs the command its name says. Symbolic rather than hard links: install.sh
# copies files one by one (a hard link would become a full copy of the binary each), tar
# and dpkg carry a symbolic link as the link itself, and `ls -l` shows what it is. In the
# same directory, so `mesa` finds `mesad` beside it.
install -m 0755 "$bin/mesa-multicall" "$root/bin/mesa"
strip --strip-unneeded "$root/bin/mesa"
for command in "${commands[@]}"; do
    [[ $command == mesa ]] || ln -s mesa "$root/bin/$command"
    "$root/bin/$command" --generate-completion-script bash >"$root/share/bash-completion/completions/$command"
    "$root/bin/$command" --generate-completion-script zsh >"$root/share/zsh/site-functions/_$command"
    "$root/bin/$command" --generate-completion-script fish >"$root/share/fish/vendor_completions.d/$command.fish"
    # One page per command (mesa.1, mesa.mount.1, …), from the same definitions as --help.
    "$bin/generate-manual" "$root/bin/$command" --multi-page \
        --output-directory "$root/share/man/man1" >/dev/null
done
# Each link runs its own command (a link the dispatch did not know would print usage).
for command in "${commands[@]}"; do
    "$root/bin/$command" --help | grep -q "USAGE: $command " ||
        { echo "package.sh: bin/$command does not run $command" >&2; exit 1; }
done
gzip -9n "$root"/share/man/man1/*.1
install -m 0644 packaging/systemd/mesa-server.service packaging/systemd/mesad.service "$root/share/mesa/systemd/"
install -m 0755 install.sh "$root/install.sh"
# What install.sh reads before touching anything: version, architecture, Debian packages.
printf 'version=%s\narch=%s\ndepends=%s\n' "$version" "$arch" "$depends" >"$root/BUNDLE"

mkdir -p dist
tarball=dist/$name.tar.gz
tar -C "$stage" --owner=0 --group=0 --sort=name -czf "$tarball.part" "$name"
mv "$tarball.part" "$tarball"
(cd dist && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$tarball $(du -h "$tarball" | cut -f1) (unpacked $(du -sh "$root" | cut -f1)); depends: $depends"

((deb)) || exit 0
# The .deb installs the same files under /usr, plus mesa-server as a system service and
# mesad as a user service.
debroot=$stage/deb
mkdir -p "$debroot/DEBIAN" "$debroot/usr" "$debroot/lib/systemd/system" "$debroot/usr/lib/systemd/user"
cp -a "$root/bin" "$debroot/usr/"
cp -a "$root/share" "$debroot/usr/"
rm -r "$debroot/usr/share/mesa"
install -m 0644 packaging/systemd/mesa-server.service "$debroot/lib/systemd/system/"
install -m 0644 packaging/systemd/mesad.service "$debroot/usr/lib/systemd/user/"
install -m 0755 packaging/deb/postrm "$debroot/DEBIAN/postrm"
deb_depends=$(printf '%s\n' "${!packages[@]}" | sort | paste -sd, | sed 's/,/, /g')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$debarch/" -e "s/@DEPENDS@/$deb_depends/" \
    -e "s/@SIZE@/$(du -sk "$debroot/usr" | cut -f1)/" packaging/deb/control.in >"$debroot/DEBIAN/control"
debfile=dist/mesa_${version}_$debarch.deb
# dpkg-deb's default xz level: with one binary xz -9 saves 1.5% (18.45 vs 18.74 MB) and
# needs 65 MiB instead of 9 MiB to unpack.
dpkg-deb --root-owner-group -Zxz --build "$debroot" "$debfile.part" >/dev/null
mv "$debfile.part" "$debfile"
(cd dist && sha256sum "${debfile#dist/}" >"${debfile#dist/}.sha256")
echo "$debfile $(du -h "$debfile" | cut -f1); Depends: $deb_depends"
