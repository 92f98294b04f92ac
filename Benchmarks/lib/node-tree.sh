# Sourced by the benchmark scripts: a stand-in node under $work: a 2-socket RAPL tree (package
# and DRAM zones, the real powercap layout) and 8 GPUs behind the stand-in libnvidia-ml.so.1
# (its getters read files, as sysfs does), with power readings beside the counters. Exports
# EMIT_POWERCAP_ROOT, EMIT_NVML_LIBRARY, FAKE_NVML_DIR, EMIT_NODE_ID; sets $files (the counter
# files a raw reader opens per sample) and $power_files (the GPUs' power readings).
# Needs: $work (an empty folder), run from the repository root.
cc=$(command -v cc || command -v clang)
root=$work/sys/class/powercap
devs=$work/sys/devices/virtual/powercap/intel-rapl
mkdir -p "$root"
files=()
power_files=()
for p in 0 1; do
  mkdir -p "$devs/intel-rapl:$p/intel-rapl:$p:0"
  echo "package-$p" > "$devs/intel-rapl:$p/name"; echo 123456789 > "$devs/intel-rapl:$p/energy_uj"
  echo 262143328850 > "$devs/intel-rapl:$p/max_energy_range_uj"
  echo dram > "$devs/intel-rapl:$p/intel-rapl:$p:0/name"; echo 2345678 > "$devs/intel-rapl:$p/intel-rapl:$p:0/energy_uj"
  echo 65712999613 > "$devs/intel-rapl:$p/intel-rapl:$p:0/max_energy_range_uj"
  ln -s "../../devices/virtual/powercap/intel-rapl/intel-rapl:$p" "$root/intel-rapl:$p"
  ln -s "../../devices/virtual/powercap/intel-rapl/intel-rapl:$p/intel-rapl:$p:0" "$root/intel-rapl:$p:0"
  files+=("$root/intel-rapl:$p/energy_uj" "$root/intel-rapl:$p:0/energy_uj")
done
nvml=$work/nvml
mkdir -p "$nvml/lib"
"$cc" -shared -fPIC -O2 -o "$nvml/lib/libnvidia-ml.so.1" Tests/EmitMetersTests/Fixtures/fake_nvml.c
echo 8 > "$nvml/count"
for g in 0 1 2 3 4 5 6 7; do
  mkdir -p "$nvml/gpu$g"; echo "GPU-0000000$g-aaaa-bbbb-cccc-dddddddddddd" > "$nvml/gpu$g/uuid"
  echo "Bench GPU" > "$nvml/gpu$g/name"; echo 987654321 > "$nvml/gpu$g/energy_mj"; echo 250000 > "$nvml/gpu$g/power_mw"
  files+=("$nvml/gpu$g/lost" "$nvml/gpu$g/energy_mj")
  power_files+=("$nvml/gpu$g/lost" "$nvml/gpu$g/power_mw")
done
export EMIT_POWERCAP_ROOT=$root EMIT_NVML_LIBRARY=$nvml/lib/libnvidia-ml.so.1 FAKE_NVML_DIR=$nvml EMIT_NODE_ID=bench
