"""The seed's three usage snippets (performance-optimization-summary.md): byte for byte as the seed
writes them (importing the seed's module name, `performance_optimizer`, which perfopt installs as an
alias), and again written against `perfopt`, with the functions they assume defined around them."""
import json
import os
import re
import tempfile
import unittest

from support import functions, require


def create_visualization():
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    np = require("numpy")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot(np.arange(100000.0), np.sin(np.arange(100000.0) / 5000.0))
    return fig


def perform_operation():
    return sum(i * i for i in range(10000))


# The seed's "Usage Examples", verbatim. When the seed is at hand (PERFOPT_SEED, default
# /work/shared/seed/performance-optimization-summary.md) the test also checks they still match it.
SEED_BASIC = """from performance_optimizer import profile_function

@profile_function()
def my_function():
    # Function code here
    pass
"""

SEED_VISUALIZATION = """from performance_optimizer import get_optimizer

optimizer = get_optimizer()
fig = create_visualization()
optimized_fig = optimizer.optimize_visualization(fig)
"""

SEED_INTEGRATION = """from performance_optimizer import PerformanceOptimizer

# Create optimizer with configuration
optimizer = PerformanceOptimizer({
    'ENABLE_PROFILING': True,
    'BACKGROUND_MONITORING': True,
    'CPU_THRESHOLD': 0.8,
    'ENABLE_CACHING': True
})

# Start monitoring
optimizer._start_monitoring()

# Use in workflow
optimizer.optimize_memory_usage()  # Before intensive operations
result = perform_operation()
optimizer.optimize_memory_usage()  # After intensive operations

# Generate report
report = optimizer.get_profiling_report()
optimizer.save_profiling_report("performance_report.json")

# Clean up
optimizer.cleanup()
"""

SEED = os.environ.get("PERFOPT_SEED", "/work/shared/seed/performance-optimization-summary.md")


class SeedVerbatim(unittest.TestCase):
    """The snippets exactly as the seed prints them, run with exec."""

    def test_they_match_the_seed(self):
        if not os.path.exists(SEED):
            self.skipTest(f"{SEED} not here")
        with open(SEED) as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        for snippet in (SEED_BASIC, SEED_VISUALIZATION, SEED_INTEGRATION):
            self.assertIn(snippet, blocks)

    def test_basic_profiling(self):
        ns = {}
        exec(SEED_BASIC, ns)
        for _ in range(5):
            ns["my_function"]()
        import performance_optimizer
        self.assertIs(ns["profile_function"], performance_optimizer.profile_function)
        f = functions(performance_optimizer.get_profiling_report())
        self.assertGreaterEqual(f["my_function"]["calls"], 5)

    def test_optimized_visualization(self):
        ns = {"create_visualization": create_visualization}
        exec(SEED_VISUALIZATION, ns)
        self.assertIs(ns["optimized_fig"], ns["fig"])
        self.assertEqual(ns["fig"].perfopt_reduction["lines"], 1)
        self.assertLess(ns["fig"].perfopt_reduction["points_after"], 100000 // 10)
        import matplotlib.pyplot as plt
        plt.close(ns["fig"])

    def test_complete_integration(self):
        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)
            try:
                ns = {"perform_operation": perform_operation}
                exec(SEED_INTEGRATION, ns)
                self.assertEqual(ns["result"], perform_operation())
                self.assertIn("profile", ns["report"])
                with open("performance_report.json") as f:
                    self.assertEqual(json.load(f)["perfopt_version"],
                                     ns["report"]["perfopt_version"])
                self.assertTrue(ns["optimizer"].closed)
            finally:
                os.chdir(cwd)


class SeedSnippets(unittest.TestCase):
    def test_basic_profiling(self):
        # --- snippet 1, verbatim ---
        from perfopt import profile_function

        @profile_function()
        def my_function():
            # Function code here
            pass
        # ---
        for _ in range(7):
            my_function()
        import perfopt
        f = functions(perfopt.get_profiling_report())
        name = "SeedSnippets.test_basic_profiling.<locals>.my_function"
        self.assertIn(name, f)
        self.assertGreaterEqual(f[name]["calls"], 7)

    def test_optimized_visualization(self):
        # --- snippet 2, verbatim ---
        from perfopt import get_optimizer

        optimizer = get_optimizer()
        fig = create_visualization()
        optimized_fig = optimizer.optimize_visualization(fig)
        # ---
        self.assertIs(optimized_fig, fig)
        line = fig.axes[0].get_lines()[0]
        self.assertLess(len(line.get_xdata()), 100000 // 10)
        self.assertEqual(fig.perfopt_reduction["lines"], 1)
        import matplotlib.pyplot as plt
        plt.close(fig)

    def test_complete_integration(self):
        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)
            try:
                # --- snippet 3, verbatim ---
                from perfopt import PerformanceOptimizer

                # Create optimizer with configuration
                optimizer = PerformanceOptimizer({
                    'ENABLE_PROFILING': True,
                    'BACKGROUND_MONITORING': True,
                    'CPU_THRESHOLD': 0.8,
                    'ENABLE_CACHING': True
                })

                # Start monitoring
                optimizer._start_monitoring()

                # Use in workflow
                optimizer.optimize_memory_usage()  # Before intensive operations
                result = perform_operation()
                optimizer.optimize_memory_usage()  # After intensive operations

                # Generate report
                report = optimizer.get_profiling_report()
                optimizer.save_profiling_report("performance_report.json")

                # Clean up
                optimizer.cleanup()
                # ---
                self.assertEqual(result, perform_operation())
                self.assertIsInstance(report, dict)
                for key in ("profile", "memory", "resources", "gpu", "cache", "suggestions"):
                    self.assertIn(key, report)
                self.assertEqual(report["memory"]["cleanups"][0]["handler"], "python.gc")
                with open("performance_report.json") as f:
                    saved = json.load(f)
                self.assertEqual(saved["perfopt_version"], report["perfopt_version"])
                self.assertTrue(optimizer.closed)
            finally:
                os.chdir(cwd)


if __name__ == "__main__":
    unittest.main()
