#!/usr/bin/env bash
# Open `ensign inspect` in a real terminal (a detached tmux session) as a new user would, then:
# wait for the sample's MRENCLAVE, edit the heap, check the new MRENCLAVE against `ensign hash`,
# sign from the dialog (the bundled sample is signed to a copy in the working directory), check
# the copy with `ensign verify`, and quit with q. Every screen is captured and printed.
#
#   scripts/tmux_check.sh              # the README's way: `pip install .` (into a throw-away venv
#                                      # that sees the system's packages), then `ensign inspect`
#   scripts/tmux_check.sh --no-install # `python -m tui.cli inspect` with this tree on PYTHONPATH
#
# Exit 0 when every check passed. Needs tmux (and pip for the default mode).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t ensign-tmux-XXXXXX)"
session="ensign-check-$$"
width=120
height=40

if [ "${1:-}" = "--no-install" ]; then
    ENSIGN="env PYTHONPATH=$repo python -m tui.cli"
else
    echo "installing this tree into $work/venv (pip install .) ..."
    # From a copy, so that setuptools' build/ and *.egg-info are not left in the work tree.
    mkdir "$work/src"
    tar -C "$repo" --exclude=.git --exclude=build --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
        | tar -C "$work/src" -xf -
    python -m venv --system-site-packages "$work/venv"
    "$work/venv/bin/python" -m pip install -q --no-deps "$work/src" 2>&1 | grep -v '^WARNING' || true
    ENSIGN="$work/venv/bin/ensign"
    [ -x "$ENSIGN" ] || { echo "tmux_check: pip install . did not provide ensign" >&2; exit 1; }
fi
hash_cmd="$ENSIGN"

cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; }
trap cleanup EXIT

capture() {  # capture NAME: save and print the pane
    tmux capture-pane -p -t "$session" > "$work/$1.txt"
    echo "===== $1 ($(date +%H:%M:%S)) ====="
    cat "$work/$1.txt"
}

wait_for() {  # wait_for REGEX SECONDS: until the pane shows REGEX
    local pattern="$1" limit="$2" waited=0
    until tmux capture-pane -p -t "$session" | grep -Eq -- "$pattern"; do
        sleep 0.2
        waited=$((waited + 1))
        if [ "$waited" -gt $((limit * 5)) ]; then
            capture "timeout"
            echo "tmux_check: gave up waiting for /$pattern/" >&2
            exit 1
        fi
    done
}

fail() { echo "tmux_check: FAILED: $*" >&2; exit 1; }

echo "working directory: $work"
echo "command: $ENSIGN inspect"
tmux new-session -d -s "$session" -x "$width" -y "$height" -c "$work" \
    "PATH=$(dirname "$ENSIGN"):\$PATH; $ENSIGN inspect; echo \"ensign exited with \$?\"; sleep 60"

# 1. The sample opens and is measured.
wait_for "re-hashed .* in [0-9.]+ (ms|s)" 30
sleep 1  # let the first frame finish drawing
capture "1-start"
sample="$repo/tui/sample/sample-enclave"
expected_default="$($hash_cmd hash --quiet "$sample")"
grep -q "$expected_default" "$work/1-start.txt" || fail "start: MRENCLAVE is not $expected_default"

# 2. Edit the heap: e focuses the first field (stack), two tabs reach heap. Keys are sent at a
#    typing pace: focus changes are applied between key events, as for a person at a keyboard.
keys() { for key in "$@"; do tmux send-keys -t "$session" "$key"; sleep 0.15; done; }
keys e Tab Tab End C-u 1 2 8 M
expected_heap="$($hash_cmd hash --quiet --heap 128M "$sample")"
wait_for "$expected_heap" 30
tmux send-keys -t "$session" Escape
sleep 0.5
capture "2-heap-128M"
grep -Eq "heap +128M +edited" "$work/2-heap-128M.txt" || fail "heap field does not show 128M (edited)"

# 3. The Layout tab with its memory map.
tmux send-keys -t "$session" 2
wait_for "memory map, SIZE" 10
capture "3-layout"

# 4. Sign: the dialog, then ctrl+s (the sample is signed to a copy in the working directory).
tmux send-keys -t "$session" s
wait_for "Sign sample-enclave" 10
sleep 0.5
capture "4-sign-dialog"
tmux send-keys -t "$session" C-s
wait_for "Compared with" 60
sleep 0.5
capture "5-signed"
[ -f "$work/sample-enclave.signed" ] || fail "no signed copy was written"
$hash_cmd verify "$work/sample-enclave.signed" | tee "$work/verify.txt"
grep -q "^OK:" "$work/verify.txt" || fail "ensign verify rejected the signed copy"

# 5. q quits.
tmux send-keys -t "$session" q
wait_for "ensign exited with 0" 10
capture "6-quit"
echo "tmux_check: all checks passed (captures in $work)"
