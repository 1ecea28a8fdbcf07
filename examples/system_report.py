#!/usr/bin/env python3
"""System resource report: the seed's third integration example, from Python.

What `perfopt sysinfo` shows (its C counterpart): the host, one system sample, the thresholds in
force and why, and every GPU with the seed's GPU targets (measure_gpu_usage(),
get_optimal_gpu_targets()); with torch imported and CUDA available, torch's view of each device
beside NVML's. Then the same facts as they appear in a run's report (its gpu and resources
sections), from a short monitored run.

usage: system_report.py [--json] [--window MS] [--out DIR]
"""
import argparse
import json
import os
import sys
import time

import perfopt
from perfopt import PerformanceOptimizer

GIB = 2 ** 30


def gib(v):
    return "?" if v is None else f"{v / GIB:.1f} GiB"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--window", type=int, default=200, help="sample window in milliseconds")
    p.add_argument("--out", default=None, help="also save a run's report (JSON, HTML) here")
    a = p.parse_args(argv)

    with PerformanceOptimizer({"BACKGROUND_MONITORING": True, "MONITOR_INTERVAL_MS": 50}) as opt:
        rep = opt.system_report(a.window)
        gpus, targets = opt.measure_gpu_usage(), opt.get_optimal_gpu_targets()
        if a.json:
            json.dump({"sysinfo": rep, "measure_gpu_usage": gpus,
                       "get_optimal_gpu_targets": targets}, sys.stdout, indent=2)
            print()
            return 0
        h, s = rep["host"], rep["system"]
        print(f"Host      {h.get('hostname')}: {h.get('cpu_model')}, {h.get('cores_online')} cores "
              f"online, {h.get('cores_allowed')} allowed, kernel {h.get('kernel')}")
        print(f"Memory    {gib(s.get('memory_total_bytes'))} total, "
              f"{gib(s.get('memory_available_bytes'))} available "
              f"(limit {gib(s.get('memory_limit_bytes'))}, from {s.get('memory_limit_source')})")
        print(f"CPU       {100 * (s.get('cpu_utilization_ratio') or 0):.0f}% busy over "
              f"{a.window} ms; load average {s.get('load_average')}")
        print("Thresholds in force")
        th = rep["thresholds"]
        for t in (th if isinstance(th, list) else th.values()):
            print(f"  {t.get('metric', ''):11} {t.get('value')}  ({t.get('why', t.get('source'))})")
        print(f"GPUs      {len(gpus)}" + ("" if gpus else f": {opt.gpu_unavailable_reason()}"))
        for d, t in zip(gpus, targets):
            line = (f"  {d['index']}: {d['name']}  {gib(d['memory_used_bytes'])} of "
                    f"{gib(d['memory_total_bytes'])} used; target {t['memory_threshold_ratio']:.2f} "
                    f"= {gib(t['target_bytes'])} ({t['why']})")
            print(line)
            if "torch" in d:
                m = d["torch"]
                print(f"     torch: {gib(m['allocated_bytes'])} allocated, "
                      f"{gib(m['reserved_bytes'])} reserved, {gib(m['fragmentation_bytes'])} "
                      f"reserved but free")
        # The same machine in a run's report: a short monitored stretch.
        time.sleep(0.3)
        run = opt.get_profiling_report()
        res = run["resources"]
        series = res.get("series", {})
        names = sorted(series) if isinstance(series, dict) else [x.get("name") for x in series]
        print(f"In a run's report: {res.get('sample_count', '?')} samples so far, "
              f"series {', '.join(n for n in names if n)}; gpu section: "
              f"{len(run['gpu'].get('devices', []))} devices")
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            opt.save_profiling_report(os.path.join(a.out, "system_report.json"))
            opt.save_profiling_report(os.path.join(a.out, "system_report.html"))
            print(f"report saved in {a.out}/system_report.json and .html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
