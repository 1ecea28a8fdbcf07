"""The Python profiler's cost per call, beside cProfile's, in one run (issue 13):

  py_baseline_call_ns       an undecorated call of a trivial function (the floor)
  py_decorator_call_ns      what @perfopt.profile_function() adds to that call
  py_cprofile_call_ns       what cProfile (enabled) adds to the same undecorated call
  py_decorator_over_cprofile  their ratio (target <= 1.5)
  example_profiling_overhead_ratio  the PyTorch example (hourly candles, 2 epochs: ~190 steps)
                            with profiling on vs off, (on - off) / off of the training's CPU
                            time (all threads: the sampler's too), median over alternating runs
                            (target <= 0.03; with --example). CPU time, not wall time: the
                            machine is shared and wall time moves by more than 3% run to run.

Each figure is the median of ROUNDS rounds; a round times LOOPS calls of each variant back to back,
so the machine's noise hits them alike. Prints `BENCH <name> <value> <unit>` lines.

usage: bench_python.py [--rounds N] [--loops N] [--example [--example-runs N]]
"""
import argparse
import cProfile
import os
import statistics
import sys
import tempfile
import time

import perfopt


def trivial(x):
    return x


decorated = perfopt.profile_function("bench.trivial")(trivial)


def time_loop(f, loops):
    rng = range(loops)
    t0 = time.perf_counter_ns()
    for i in rng:
        f(i)
    return (time.perf_counter_ns() - t0) / loops


def time_cprofile(f, loops):
    prof = cProfile.Profile()
    prof.enable()
    ns = time_loop(f, loops)
    prof.disable()
    return ns


def call_costs(rounds, loops):
    base, deco, cprof = [], [], []
    time_loop(decorated, loops // 10)  # warm up: the site and the thread's zone stack exist
    for _ in range(rounds):
        b = time_loop(trivial, loops)
        d = time_loop(decorated, loops)
        c = time_cprofile(trivial, loops)
        b2 = time_loop(trivial, loops)
        floor = min(b, b2)
        base.append(floor)
        deco.append(d - floor)
        cprof.append(c - floor)
    return statistics.median(base), statistics.median(deco), statistics.median(cprof)


def example_overhead(runs):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "examples"))
    import progressive_training as pt
    cpu, wall = {True: [], False: []}, {True: [], False: []}

    def once(d, profiling):
        r = pt.run(data="hourly", out_dir=d, epochs=2, profiling=profiling, quiet=True,
                   dashboard_every=100)
        cpu[profiling].append(r["train_cpu_seconds"])
        wall[profiling].append(r["train_seconds"])

    with tempfile.TemporaryDirectory() as d:
        pt.run(data="daily", out_dir=d, short=True, quiet=True)  # warm up (imports, caches)
        for i in range(runs):
            for profiling in ((True, False) if i % 2 == 0 else (False, True)):
                once(d, profiling)
    med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in cpu}
    return med[True], med[False]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--loops", type=int, default=200000)
    p.add_argument("--example", action="store_true")
    p.add_argument("--example-runs", type=int, default=10)
    a = p.parse_args(argv)
    tag = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]} {sys.executable}"
    print(f"# bench_python: {tag}, {a.rounds} rounds of {a.loops} calls (medians)")
    perfopt.set_profiling_enabled(True)
    base, deco, cprof = call_costs(a.rounds, a.loops)
    calls = {f["name"]: f["calls"] for f in perfopt.get_profiling_report()["profile"]["functions"]}
    if calls.get("bench.trivial", 0) < a.rounds * a.loops:  # the decorator really recorded
        print(f"bench_python: bench.trivial recorded {calls.get('bench.trivial')} calls",
              file=sys.stderr)
        return 1
    print(f"BENCH py_baseline_call_ns {base:.1f} ns")
    print(f"BENCH py_decorator_call_ns {deco:.1f} ns")
    print(f"BENCH py_cprofile_call_ns {cprof:.1f} ns")
    ratio = deco / cprof if cprof > 0 else float("inf")
    print(f"BENCH py_decorator_over_cprofile {ratio:.3f} ratio (target <= 1.5)")
    if a.example:
        (on, on_wall), (off, off_wall) = example_overhead(a.example_runs)
        print(f"# example training, medians of {a.example_runs}: CPU seconds on {on:.3f}, off "
              f"{off:.3f}; wall seconds on {on_wall:.3f}, off {off_wall:.3f}")
        print(f"BENCH example_profiling_overhead_ratio {(on - off) / off:.4f} ratio "
              f"(target <= 0.03)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
