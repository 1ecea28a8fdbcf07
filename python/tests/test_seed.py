"""The seed's three usage snippets (performance-optimization-summary.md), verbatim except for the
module's name (the seed's `performance_optimizer` is `perfopt`), with the functions they assume
defined around them."""
import json
import os
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
