#!/usr/bin/env bash
# check-tree.sh: fail when the repository tracks a build output.
#
#   scripts/check-tree.sh            check every tracked file
#   scripts/check-tree.sh selftest   prove the check fails on an executable
#                                    and on a large file (in a scratch repo)
#
# A tracked file fails the check when it is a compiled executable or object
# (ELF, Mach-O, PE/COFF, WebAssembly, a Go archive) anywhere, or when it is
# larger than MAX_BYTES (1 MiB) outside a testdata/ directory. Test vectors
# live in testdata/ and may be larger; nothing else should be.
#
# Environment: MAX_BYTES (1048576).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAX_BYTES="${MAX_BYTES:-1048576}"

# kind_of FILE prints what compiled format FILE is in, or nothing.
kind_of() {
	local magic
	magic="$(head -c 8 -- "$1" | od -An -tx1 | tr -d ' \n')"
	case "$magic" in
	7f454c46*) echo "ELF executable or object" ;;
	cffaedfe* | cefaedfe* | feedfacf* | feedface* | cafebabe*) echo "Mach-O binary (or Java class)" ;;
	4d5a*) echo "PE/COFF (Windows) executable" ;;
	0061736d*) echo "WebAssembly module" ;;
	213c617263683e0a) echo "ar archive (Go package archive or static library)" ;;
	esac
}

in_testdata() { [[ "$1" == testdata/* || "$1" == */testdata/* ]]; }

main() {
	local f size kind bad=0 checked=0
	command -v git >/dev/null 2>&1 || { echo "check-tree: git is not installed" >&2; return 1; }
	while IFS= read -r -d '' f; do
		[[ -f "$f" && ! -L "$f" ]] || continue # deleted in the work tree, or a symlink
		checked=$((checked + 1))
		kind="$(kind_of "$f")"
		if [[ -n "$kind" ]]; then
			echo "check-tree: $f is a tracked $kind: build outputs must not be committed (git rm --cached '$f' and add it to .gitignore)" >&2
			bad=1
		fi
		size="$(stat -c %s -- "$f")"
		if ((size > MAX_BYTES)) && ! in_testdata "$f"; then
			echo "check-tree: $f is $size bytes (> $MAX_BYTES) outside testdata/: keep large files out of the repository" >&2
			bad=1
		fi
	done < <(git ls-files -z)
	((bad == 0)) || return 1
	echo "check-tree: $checked tracked files, no build output, none over $MAX_BYTES bytes outside testdata/" >&2
}

# selftest runs the check in scratch repositories holding a compiled
# executable, a large file outside testdata/ and a large file inside it.
selftest() {
	local self dir
	self="$(pwd)/scripts/check-tree.sh"
	dir="$(mktemp -d)"
	trap 'rm -rf "$dir"' RETURN
	scratch() { rm -rf "$dir/r" && mkdir -p "$dir/r/scripts" "$dir/r/testdata" && cp "$self" "$dir/r/scripts/" && git -C "$dir/r" init -q; }
	expect() { # expect WANT(0|1) WHAT
		local got=0
		git -C "$dir/r" add -A
		bash "$dir/r/scripts/check-tree.sh" 2>/dev/null || got=1
		((got == $1)) || { echo "check-tree selftest: $2: exit $got, want $1" >&2; return 1; }
	}
	scratch && cp "$(type -P true)" "$dir/r/tool" && expect 1 "a tracked executable" || return
	scratch && head -c $((MAX_BYTES + 1)) /dev/zero >"$dir/r/big.bin" && expect 1 "a large file outside testdata/" || return
	scratch && head -c $((MAX_BYTES + 1)) /dev/zero >"$dir/r/testdata/big.bin" && expect 0 "a large file in testdata/" || return
	echo "check-tree selftest: ok" >&2
}

case "${1:-check}" in
check) main ;;
selftest) selftest ;;
*) echo "usage: $0 [check|selftest]" >&2; exit 2 ;;
esac
