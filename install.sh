#!/bin/sh
# Installs mesa (bin/mesa, one executable, with mesad, mesa-client and mesa-server as
# symbolic links to it; completions, man pages) from a release bundle on Debian/Ubuntu:
#   curl -fsSL …/install.sh | sh -s -- --yes --from https://…/mesa-0.1.0-linux-x86_64.tar.gz
#   sh install.sh --from dist/                  # newest bundle for this machine in dist/
#   sh install.sh --uninstall
# Every check (OS, architecture, checksum, /dev/fuse, prefix, packages) runs before the
# first change; files and links are copied beside their targets and renamed into place, so
# a failure leaves nothing half-installed. Running it again upgrades in place. POSIX sh.
set -eu

usage() {
    cat <<'EOF'
usage: install.sh [--yes] [--prefix DIR] [--from PATH_OR_URL] [--version X.Y.Z] [--uninstall]
  --yes, -y        do not ask (install missing Debian packages with apt-get)
  --prefix DIR     where to install (default /usr/local as root, else ~/.local)
  --from P         a bundle (mesa-<version>-linux-<arch>.tar.gz, its .sha256 beside it),
                   a directory holding bundles, or an http(s) URL of either
                   (default $MESA_RELEASES_URL)
  --version X.Y.Z  the version to pick from a directory or URL (default: the newest there)
  --no-fuse-check  install even where /dev/fuse is missing (e.g. building an image whose
                   containers get /dev/fuse when they run)
  --uninstall      remove exactly the files a previous run installed under the prefix
EOF
}

say() { printf 'mesa install: %s\n' "$*"; }
die() { printf 'mesa install: error: %s\n' "$*" >&2; exit 1; }

yes=0 prefix='' from=${MESA_RELEASES_URL:-} want='' uninstall=0 fuse_check=1
while [ $# -gt 0 ]; do
    case $1 in
        -y | --yes) yes=1 ;;
        --prefix) [ $# -ge 2 ] || { usage >&2; exit 2; }; prefix=$2; shift ;;
        --prefix=*) prefix=${1#*=} ;;
        --from) [ $# -ge 2 ] || { usage >&2; exit 2; }; from=$2; shift ;;
        --from=*) from=${1#*=} ;;
        --version) [ $# -ge 2 ] || { usage >&2; exit 2; }; want=$2; shift ;;
        --version=*) want=${1#*=} ;;
        --no-fuse-check) fuse_check=0 ;;
        --uninstall) uninstall=1 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'mesa install: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# --- Where: root installs system-wide, anyone else under ~/.local. -----------------------
uid=$(id -u)
if [ -z "$prefix" ]; then
    if [ "$uid" = 0 ]; then prefix=/usr/local; else prefix=${HOME:-/nonexistent}/.local; fi
fi
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
manifest=$prefix/share/mesa/installed-files

# The nearest existing directory at or above the prefix must be writable by us.
writable_prefix() {
    dir=$1
    while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
    [ -w "$dir" ] && { [ ! -e "$1/bin" ] || [ -w "$1/bin" ]; }
}
if ! writable_prefix "$prefix"; then
    die "cannot write to $prefix. Run as root (sudo sh install.sh …), or pass --prefix DIR with a directory you can write (e.g. --prefix \$HOME/.local). Nothing was installed."
fi

if [ "$uninstall" = 1 ]; then
    [ -f "$manifest" ] || die "no mesa installation under $prefix ($manifest is missing). Nothing was removed."
    version=$(sed -n 's/^# version=//p' "$manifest")
    grep -v '^#' "$manifest" | while IFS= read -r file; do rm -f "$prefix/$file"; done
    rm -f "$manifest"
    rmdir "$prefix/share/mesa" 2>/dev/null || true
    say "removed mesa $version from $prefix"
    exit 0
fi

# --- What this machine is. ---------------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "mesa runs on Linux; this is $(uname -s). Nothing was installed."
arch=$(uname -m)
distro=$(. /etc/os-release 2>/dev/null && printf '%s' "${PRETTY_NAME:-${ID:-}}") || distro=
[ -n "$distro" ] || distro="an unknown Linux"

work=$(mktemp -d "${TMPDIR:-/tmp}/mesa-install.XXXXXX" 2>/dev/null) ||
    die "cannot create a temporary directory in ${TMPDIR:-/tmp}; set TMPDIR to a directory you can write. Nothing was installed."
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fetch() { # URL FILE
    command -v curl >/dev/null 2>&1 || die "curl is needed to download $1 (apt-get install curl), or pass --from with a local file. Nothing was installed."
    curl -fsSL --retry 3 -o "$2" "$1" || die "could not download $1. Nothing was installed."
}

# --- Which bundle: a file, a directory or URL of bundles, or a URL of one. --------------
[ -n "$from" ] || die "no bundle given: pass --from PATH_OR_URL (a mesa-<version>-linux-$arch.tar.gz or a directory of them), or set MESA_RELEASES_URL. Nothing was installed."
pattern="mesa-${want:-*}-linux-$arch.tar.gz"
case $from in
    http://* | https://*)
        case $from in
            *.tar.gz) url=$from ;;
            *) [ -n "$want" ] || die "--version is needed with a release URL that is not a .tar.gz. Nothing was installed."
               url=${from%/}/mesa-$want-linux-$arch.tar.gz ;;
        esac
        bundle=$work/${url##*/}
        say "downloading $url"
        fetch "$url" "$bundle"
        fetch "$url.sha256" "$bundle.sha256"
        ;;
    *)
        if [ -d "$from" ]; then
            # shellcheck disable=SC2012  # bundle names hold no spaces
            found=$(cd "$from" && ls $pattern 2>/dev/null | sort -V | tail -n 1)
            [ -n "$found" ] || die "no $pattern in $from. Nothing was installed."
            from=${from%/}/$found
        fi
        [ -f "$from" ] || die "no such bundle: $from. Nothing was installed."
        bundle=$from
        [ -f "$bundle.sha256" ] || die "no checksum file $bundle.sha256 beside the bundle; refusing to install an unverified bundle. Nothing was installed."
        ;;
esac

# --- Is it intact, and for this machine? -------------------------------------------------
expected=$(cut -d' ' -f1 <"$bundle.sha256")
actual=$(sha256sum "$bundle" | cut -d' ' -f1)
[ "$expected" = "$actual" ] ||
    die "checksum mismatch for ${bundle##*/}: expected $expected, got $actual. The bundle is corrupt or truncated; download it again. Nothing was installed."
mkdir "$work/x"
tar -xzf "$bundle" -C "$work/x" || die "cannot unpack ${bundle##*/}. Nothing was installed."
root=$(find "$work/x" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -n "$root" ] && [ -f "$root/BUNDLE" ] || die "${bundle##*/} is not a mesa bundle (no BUNDLE file). Nothing was installed."
field() { sed -n "s/^$1=//p" "$root/BUNDLE"; }
version=$(field version) bundle_arch=$(field arch) depends=$(field depends)
[ "$bundle_arch" = "$arch" ] ||
    die "${bundle##*/} is built for $bundle_arch, this machine is $arch. Use mesa-$version-linux-$arch.tar.gz. Nothing was installed."
[ -z "$want" ] || [ "$want" = "$version" ] || die "${bundle##*/} holds version $version, not $want. Nothing was installed."

# --- FUSE: mesa mounts through /dev/fuse. --------------------------------------------------
if [ ! -c /dev/fuse ]; then
    msg="/dev/fuse is missing, so mesa cannot mount here."
    if [ -f /.dockerenv ] || grep -qa container= /proc/1/environ 2>/dev/null; then
        msg="$msg This looks like a container: start it with --device /dev/fuse --cap-add SYS_ADMIN (or --privileged)."
    else
        msg="$msg Load the module (sudo modprobe fuse); in a container or VM, give it the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)."
    fi
    if [ "$fuse_check" = 1 ]; then
        die "$msg To install anyway (an image whose containers get /dev/fuse later), pass --no-fuse-check. Nothing was installed."
    fi
    say "warning: $msg"
elif [ "$uid" != 0 ] && ! { [ -r /dev/fuse ] && [ -w /dev/fuse ]; }; then
    say "warning: /dev/fuse is not readable and writable by you; mounting needs root to run: chmod 666 /dev/fuse"
fi

# --- Debian packages: fuse3 and the libraries the binaries link. --------------------------
missing=
if command -v dpkg-query >/dev/null 2>&1; then
    for package in $depends; do
        dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $package"
    done
else
    # Not Debian-based: ask the dynamic linker instead (it follows the links).
    for binary in "$root"/bin/*; do
        if ldd "$binary" 2>/dev/null | grep -q 'not found'; then missing=" $depends"; fi
    done
    command -v fusermount3 >/dev/null 2>&1 || missing=" $depends"
fi
missing=${missing# }
if [ -n "$missing" ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "these packages are missing and apt-get is not available on $distro to install them: $missing (Debian 12 names; on other systems install fuse3, libfuse3, libgit2 1.5, libcurl, sqlite3 and OpenSSL 3 with the package manager). Nothing was installed."
    [ "$uid" = 0 ] || die "these packages are missing: $missing. Install them as root (sudo apt-get install $missing), then run this again. Nothing was installed."
    if [ "$yes" != 1 ]; then
        (: </dev/tty) 2>/dev/null || die "these packages are missing: $missing. Pass --yes to install them with apt-get without asking. Nothing was installed."
        printf 'mesa install: install %s with apt-get? [y/N] ' "$missing" >/dev/tty
        read -r answer </dev/tty || answer=
        case $answer in y | Y | yes) ;; *) die "not installing $missing. Nothing was installed." ;; esac
    fi
    say "installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # a list of package names
    if ! apt-get install -y -qq --no-install-recommends $missing >"$work/apt.log" 2>&1; then
        apt-get update -qq >"$work/apt.log" 2>&1 && apt-get install -y -qq --no-install-recommends $missing >"$work/apt.log" 2>&1 ||
            { cat "$work/apt.log" >&2; die "apt-get could not install $missing. Nothing was installed."; }
    fi
fi

# --- Install: copy beside each target, then rename into place. ----------------------------
old=
if [ -f "$manifest" ]; then old=$(sed -n 's/^# version=//p' "$manifest"); fi
# Files and symbolic links (the commands besides bin/mesa), each link copied as a link.
(cd "$root" && find bin share \( -type f -o -type l \) ! -path 'share/mesa/*' | LC_ALL=C sort) >"$work/files"
unstage() { while IFS= read -r file; do rm -f "$prefix/$file.mesa-new"; done <"$work/files"; }
while IFS= read -r file; do
    target=$prefix/$file
    { mkdir -p "$(dirname "$target")" && rm -f "$target.mesa-new" && cp -P "$root/$file" "$target.mesa-new"; } 2>/dev/null ||
        { unstage; die "cannot write $target. Nothing was installed."; }
done <"$work/files"
while IFS= read -r file; do mv -f "$prefix/$file.mesa-new" "$prefix/$file"; done <"$work/files"
# An upgrade removes what the old version installed and this one does not.
if [ -f "$manifest" ]; then
    grep -v '^#' "$manifest" | while IFS= read -r file; do
        grep -qxF "$file" "$work/files" || rm -f "$prefix/$file"
    done
fi
mkdir -p "$(dirname "$manifest")"
{ printf '# mesa install manifest: files under %s, removed by install.sh --uninstall\n# version=%s\n' "$prefix" "$version"
  cat "$work/files"; } >"$manifest.mesa-new"
mv -f "$manifest.mesa-new" "$manifest"

if [ -z "$old" ]; then say "installed mesa $version in $prefix"
elif [ "$old" = "$version" ]; then say "reinstalled mesa $version in $prefix"
else say "upgraded mesa $old -> $version in $prefix (restart a running mesad: mesa unmount; mesa-client shutdown)"
fi
case ":${PATH:-}:" in *":$prefix/bin:"*) ;; *) say "add $prefix/bin to PATH: export PATH=\"$prefix/bin:\$PATH\"" ;; esac
cat <<EOF
Next: mount your repositories (the key from your Mesa server or SDK):
  MESA_ORGS="<org>:<key>" MESA_API_URL=https://<server>/v1 mesa mount -d -y
  cd ~/.local/share/mesa/mnt/<org>/<repo>
Without MESA_API_URL mesa runs on a local embedded store (org "local").
EOF
