#!/bin/sh
# perfopt sysinfo: valid JSON; known values from the fake container root and the fake NVML; on
# the real machine, total and available memory agree with `free -b` within 1%.
set -u
PERFOPT=${PERFOPT:-build/perfopt}
BUILD=${BUILD:-build}
FAKE_NVML=$(cd "$BUILD" && pwd)/tests/fakes/libfake_nvml.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_sysinfo: FAIL: $*"; exit 1; }

"$PERFOPT" sysinfo --help | grep -q 'usage: perfopt sysinfo' || fail "--help"
"$PERFOPT" sysinfo --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option must exit 2"

# Real machine: text and JSON.
"$PERFOPT" sysinfo --window 50 >"$tmp/text" || fail "text output exit status"
grep -q 'Thresholds in force' "$tmp/text" || fail "text output lacks thresholds"
grep -q '^GPUs' "$tmp/text" || fail "text output lacks GPUs"
"$PERFOPT" sysinfo --json --window 50 >"$tmp/real.json" || fail "json exit status"
python3 -m json.tool "$tmp/real.json" >/dev/null || fail "sysinfo --json is not valid JSON"

if command -v free >/dev/null 2>&1; then
  free -b >"$tmp/free"
  python3 - "$tmp/real.json" "$tmp/free" <<'PY' || fail "memory disagrees with free -b"
import json, sys
d = json.load(open(sys.argv[1]))["system"]
for line in open(sys.argv[2]):
    if line.startswith("Mem:"):
        f = line.split()
        total, avail = int(f[1]), int(f[6])
def close(a, b): return abs(a - b) <= 0.01 * max(a, b)
assert close(d["memory_total_bytes"], total), (d["memory_total_bytes"], total)
assert close(d["memory_available_bytes"], avail), (d["memory_available_bytes"], avail)
PY
else
  echo "test_sysinfo: free not installed: skipped the free -b comparison"
fi

# Fake container with 4 fake GPUs: known values and the reasons given.
PERFOPT_PROC_ROOT=tests/fakes/proc/container PERFOPT_NVML_LIBRARY="$FAKE_NVML" \
  PERFOPT_FAKE_NVML=4 PERFOPT_MEMORY_THRESHOLD=0 "$PERFOPT" sysinfo --json --window 0 \
  >"$tmp/fake.json" || fail "fake root exit status"
python3 -m json.tool "$tmp/fake.json" >/dev/null || fail "fake root JSON invalid"
python3 - "$tmp/fake.json" <<'PY' || fail "fake root values"
import json, sys
d = json.load(open(sys.argv[1]))
h = d["host"]
assert h["cpu_model"] == "Fake CPU @ 3.00GHz", h
assert h["memory_limit_source"] == "cgroup" and h["memory_limit_bytes"] == 4 << 30, h
assert d["system"]["effective_available_bytes"] == (2 << 30) + (512 << 20)
assert [x["name"] for x in d["system"]["disks"]] == ["sda", "nvme0n1"]
th = {t["metric"]: t for t in d["thresholds"]}
assert th["memory"]["source"] == "hardware default" and th["memory"]["value"] == 0.75, th
assert "cgroup memory limit" in th["memory"]["why"], th
# nothing configured: the built-in defaults say so, not "config"
assert th["cpu"]["source"] == "default" and th["cpu"]["value"] == 0.8, th
assert th["disk_busy"]["source"] == "default", th
g = d["gpu"]
assert g["available"] is True and len(g["devices"]) == 4 and g["dropped_devices"] == 0, g
gt = [t for t in d["thresholds"] if t["metric"] == "gpu_memory"]
assert [t["device"] for t in gt] == [0, 1, 2, 3], gt
assert g["devices"][3]["memory_total_bytes"] == 32 << 30
assert g["devices"][0]["processes"][0]["pid"] == 1000
PY

# The environment says so too, in the text form.
PERFOPT_PROC_ROOT=tests/fakes/proc/container PERFOPT_CPU_THRESHOLD=0.7 "$PERFOPT" sysinfo \
  --window 0 >"$tmp/env.txt" 2>/dev/null || fail "env threshold exit status"
grep -q "cpu *0.70 *environment PERFOPT_CPU_THRESHOLD" "$tmp/env.txt" \
  || fail "threshold source not environment: $(grep cpu "$tmp/env.txt")"
grep -q "config:" "$tmp/env.txt" && fail "a threshold still claims 'config'"

# No GPU: the reason is given, exit status stays 0.
PERFOPT_NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1 "$PERFOPT" sysinfo --json --window 0 \
  >"$tmp/nogpu.json" || fail "no-GPU exit status"
python3 - "$tmp/nogpu.json" <<'PY' || fail "no-GPU reason"
import json, sys
g = json.load(open(sys.argv[1]))["gpu"]
assert g["available"] is False and "/nonexistent/libnvidia-ml.so.1" in g["reason"], g
PY

# A root that does not exist: a clear error, exit 1.
PERFOPT_PROC_ROOT=/nonexistent/root "$PERFOPT" sysinfo >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] || fail "missing root must exit 1"
grep -q 'cannot read' "$tmp/err" || fail "missing root error message"
echo "test_sysinfo: ok"
