#!/usr/bin/env bash
# Build the install bundle for a Debian 12 server (`make dist`): one directory and its tarball,
#   dist/remora-admin-VERSION-pyX.Y/
#     python/      a Python >= 3.12 (Debian 12 has 3.11; Django 6.1 needs 3.12), relocatable:
#                  installed on the server as /opt/remora/python
#     wheelhouse/  the project's wheel and a wheel of every dependency, for that Python
#     deploy/      install.sh, the systemd units, gunicorn.conf.py, remora.env.example
#   dist/remora-admin-VERSION-pyX.Y.tar.gz
# The server needs no compiler and no PyPI: `deploy/install.sh` installs from the bundle alone.
#
# Usage: deploy/build-bundle.sh [--python /path/to/prefix/bin/python3.X] [--out DIR] [--no-tar]
# The Python is a pyenv-style prefix built on Debian 12 with --enable-shared (pyenv's default
# here): the newest 3.12+ under $(pyenv root)/versions/ unless --python says otherwise. Needs
# patchelf (apt-get install patchelf) to make it relocatable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python=
out=$root/dist
make_tar=1

while [ $# -gt 0 ]; do
  case $1 in
  --python) python=${2:?--python needs a path}; shift 2 ;;
  --out) out=${2:?--out needs a directory}; shift 2 ;;
  --no-tar) make_tar=0; shift ;;
  *) echo "build-bundle: unknown argument $1" >&2; exit 2 ;;
  esac
done

die() { echo "build-bundle: $*" >&2; exit 1; }

command -v patchelf >/dev/null || die "patchelf is missing: apt-get install patchelf"
command -v git >/dev/null || die "git is missing: apt-get install git"

if [ -z "$python" ]; then
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  while IFS= read -r candidate; do
    if [ -x "$candidate/bin/python3" ]; then python=$candidate/bin/python3; break; fi
  done < <(printf '%s\n' "$pyenv_root"/versions/3.1[2-9]* | sort -rV)
  [ -n "$python" ] || die "no Python 3.12+ under $pyenv_root/versions (pyenv install 3.13, or --python)"
fi
[ -x "$python" ] || die "$python is not an executable"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' ||
  die "$python is older than 3.12 (Django 6.1 needs 3.12 or newer)"

prefix=$("$python" -c 'import sys; print(sys.base_prefix)')
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n1)
[ -n "$version" ] || die "no version in pyproject.toml"
name=remora-admin-$version-py$pyver
stage=$out/$name
[ -e "$prefix/lib/libpython$pyver.so.1.0" ] ||
  die "$prefix has no libpython$pyver.so.1.0 (a Python built with --enable-shared is expected)"

echo "==> $name from $python ($("$python" -V 2>&1))"
rm -rf "$stage" "$stage.tar.gz"
mkdir -p "$stage/wheelhouse" "$stage/deploy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The interpreter: its prefix without the test suite, IDLE, Tk, the static library, pip and
#    whatever was installed into its site-packages; libpython found beside the executable.
echo "==> python/ (relocatable, for /opt/remora/python)"
tar -C "$prefix" -cf - \
  --exclude="lib/python$pyver/test" --exclude="lib/python$pyver/idlelib" \
  --exclude="lib/python$pyver/tkinter" --exclude="lib/python$pyver/turtledemo" \
  --exclude="lib/python$pyver/lib-dynload/_tkinter*" --exclude="lib/python$pyver/site-packages/*" \
  --exclude="lib/python$pyver/config-$pyver-*/*.a" --exclude='__pycache__' \
  --exclude='bin/idle*' --exclude='bin/pip*' --exclude='bin/pydoc*' --exclude='bin/*-config' \
  --exclude='bin/*-gdb.py' --exclude='include' --exclude='share' --exclude='lib/pkgconfig' \
  bin lib | (mkdir "$stage/python" && tar -C "$stage/python" -xf -)
for exe in "$stage/python/bin/python$pyver" "$stage/python/lib/libpython$pyver.so.1.0"; do
  # shellcheck disable=SC2016 # $ORIGIN is for the loader to expand, not the shell
  patchelf --set-rpath '$ORIGIN/../lib' "$exe"
done
relocated=$("$stage/python/bin/python$pyver" -c 'import sys, ssl, sqlite3, ctypes, lzma, bz2, zlib; print(sys.prefix)')
[ "$relocated" = "$stage/python" ] || die "the copied Python thinks its prefix is $relocated"

# 2. The project's wheel, built from the tracked and new files of this tree (not from a stale
#    build/ folder), then a wheel of every dependency for this Python.
echo "==> wheelhouse/"
git -C "$root" ls-files -z --cached --others --exclude-standard |
  (cd "$root" && xargs -0 tar -cf - --ignore-failed-read 2>/dev/null) | tar -C "$work" -xf -
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$stage/wheelhouse" "$work"
project_wheel=$(ls "$stage"/wheelhouse/remora_admin-*.whl)
"$python" -m pip wheel --quiet --disable-pip-version-check -w "$stage/wheelhouse" "$project_wheel"
# pip and setuptools too: the venv on the server is upgraded from here, never from PyPI.
"$python" -m pip wheel --quiet --disable-pip-version-check -w "$stage/wheelhouse" pip

# 3. What installs it.
cp "$here"/install.sh "$here"/remora-admin.sh "$here"/gunicorn.conf.py "$here"/remora.env.example \
  "$here"/*.service "$stage/deploy/"
printf '%s\n' "$name" >"$stage/BUNDLE"

if [ "$make_tar" = 1 ]; then
  echo "==> $name.tar.gz"
  tar -C "$out" -czf "$stage.tar.gz" "$name"
fi
if [ "$make_tar" = 1 ]; then echo "Bundle: $stage.tar.gz"; else echo "Bundle: $stage"; fi
echo "On the server (Debian 12, as root): tar xzf $name.tar.gz && $name/deploy/install.sh --help"
