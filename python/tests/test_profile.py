"""The profiler from Python: the decorator, zones, generators and coroutines, threads, and one
call tree shared with C zones."""
import asyncio
import json
import threading
import unittest

import perfopt
from perfopt import _perfopt
from support import functions


def report():
    return json.loads(_perfopt.profile_report_json())


def tree(rep):
    """{(parent name, name): calls} of the call tree."""
    nodes = {n["id"]: n for n in rep["profile"]["call_tree"]}
    out = {}
    for n in nodes.values():
        parent = nodes[n["parent"]]["name"] if n["parent"] >= 0 else None
        out[(parent, n["name"])] = out.get((parent, n["name"]), 0) + n["calls"]
    return out


class Decorator(unittest.TestCase):
    def setUp(self):
        perfopt.set_profiling_enabled(True)
        perfopt.reset_profile()

    def test_calls_are_counted_under_the_qualified_name(self):
        @perfopt.profile_function()
        def add(a, b=1):
            return a + b

        self.assertEqual([add(i, b=2) for i in range(5)], [2, 3, 4, 5, 6])
        f = functions(report())
        name = "Decorator.test_calls_are_counted_under_the_qualified_name.<locals>.add"
        self.assertEqual(f[name]["calls"], 5)
        self.assertEqual(add.zone_name, name)

    def test_explicit_name_and_bare_decorator(self):
        @perfopt.profile_function("custom")
        def a():
            return 1

        @perfopt.profile_function
        def b():
            return 2

        self.assertEqual((a(), b()), (1, 2))
        f = functions(report())
        self.assertIn("custom", f)
        self.assertEqual(f[b.zone_name]["calls"], 1)

    def test_wrapper_keeps_the_function_metadata(self):
        def original(x):
            """doc"""
            return x

        wrapped = perfopt.profile_function()(original)
        self.assertEqual(wrapped.__name__, "original")
        self.assertEqual(wrapped.__doc__, "doc")
        self.assertIs(wrapped.__wrapped__, original)

    def test_an_exception_ends_the_zone(self):
        @perfopt.profile_function("raises")
        def raises():
            raise ValueError("boom")

        @perfopt.profile_function("after")
        def after():
            return 1

        with self.assertRaisesRegex(ValueError, "boom"):
            raises()
        after()
        t = tree(report())
        self.assertEqual(t[(None, "raises")], 1)
        self.assertEqual(t[(None, "after")], 1)  # a root, not a child of an unended zone
        self.assertEqual(perfopt._perfopt.profile_counters()["unmatched_ends"], 0)

    def test_methods_static_and_class_methods_bind(self):
        class K:
            factor = 3

            @perfopt.profile_function()
            def m(self, x):
                return x * self.factor

            @perfopt.profile_function()
            @staticmethod
            def s(x):
                return -x

            @perfopt.profile_function()
            @classmethod
            def c(cls, x):
                return x + cls.factor

        k = K()
        self.assertEqual((k.m(2), K.s(2), k.s(2), K.c(1)), (6, -2, -2, 4))
        self.assertEqual(K.m(k, 1), 3)
        f = functions(report())
        self.assertEqual(f["Decorator.test_methods_static_and_class_methods_bind.<locals>.K.m"]
                         ["calls"], 2)

    def test_nesting_builds_the_call_tree(self):
        @perfopt.profile_function("inner")
        def inner():
            return 1

        @perfopt.profile_function("outer")
        def outer():
            return inner() + inner()

        outer()
        t = tree(report())
        self.assertEqual(t[("outer", "inner")], 2)
        self.assertEqual(t[(None, "outer")], 1)

    def test_disabled_profiling_records_nothing_and_still_calls(self):
        @perfopt.profile_function("off")
        def off():
            return 7

        perfopt.set_profiling_enabled(False)
        try:
            self.assertEqual(off(), 7)
            with perfopt.zone("off zone"):
                pass
        finally:
            perfopt.set_profiling_enabled(True)
        off()  # positive control
        f = functions(report())
        self.assertEqual(f["off"]["calls"], 1)
        self.assertNotIn("off zone", f)


class Zones(unittest.TestCase):
    def setUp(self):
        perfopt.reset_profile()

    def test_zone_times_its_block_and_nests(self):
        with perfopt.zone("train_bucket"):
            with perfopt.zone("forward"):
                pass
            with perfopt.zone("forward"):
                pass
        t = tree(report())
        self.assertEqual(t[("train_bucket", "forward")], 2)

    def test_zone_ends_when_the_block_raises(self):
        with self.assertRaises(KeyError):
            with perfopt.zone("z"):
                raise KeyError("x")
        with perfopt.zone("next"):
            pass
        self.assertEqual(tree(report())[(None, "next")], 1)

    def test_zone_name_must_be_a_str(self):
        with self.assertRaises(TypeError):
            perfopt.zone(3)

    def test_python_and_c_zones_share_one_call_tree(self):
        @perfopt.profile_function("py_leaf")
        def leaf():
            return 1

        with perfopt.zone("py_outer"):
            _perfopt._c_zone_call("c_middle", leaf)
        t = tree(report())
        self.assertEqual(t[("py_outer", "c_middle")], 1)
        self.assertEqual(t[("c_middle", "py_leaf")], 1)


class GeneratorsAndCoroutines(unittest.TestCase):
    def setUp(self):
        perfopt.reset_profile()

    def test_a_generator_records_one_call_per_resume(self):
        @perfopt.profile_function("gen")
        def gen(n):
            total = 0
            for i in range(n):
                got = yield i
                total += got or 0
            return total

        g = gen(3)
        self.assertEqual(next(g), 0)
        self.assertEqual(g.send(10), 1)
        with perfopt.zone("between"):  # not a child of gen: its zone is closed while suspended
            pass
        self.assertEqual(g.send(5), 2)
        with self.assertRaises(StopIteration) as stop:
            g.send(1)
        self.assertEqual(stop.exception.value, 16)
        t = tree(report())
        self.assertEqual(t[(None, "gen")], 4)  # 3 yields + the resume that returns
        self.assertEqual(t[(None, "between")], 1)

    def test_throw_and_close_reach_the_generator(self):
        seen = []

        @perfopt.profile_function("g2")
        def g2():
            try:
                yield 1
            except ValueError:
                seen.append("caught")
                yield 2
            finally:
                seen.append("closed")

        g = g2()
        next(g)
        self.assertEqual(g.throw(ValueError()), 2)
        g.close()
        self.assertEqual(seen, ["caught", "closed"])

    def test_a_coroutine_records_each_step_not_the_wait(self):
        @perfopt.profile_function("coro")
        async def coro():
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return "done"

        self.assertEqual(asyncio.run(coro()), "done")
        self.assertEqual(tree(report())[(None, "coro")], 3)


class Threads(unittest.TestCase):
    def test_python_threads_appear_as_named_threads(self):
        perfopt.reset_profile()

        @perfopt.profile_function("work")
        def work():
            return sum(range(100))

        def run():
            for _ in range(50):
                work()

        threads = [threading.Thread(target=run, name=f"loader-{i}") for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rep = report()
        self.assertEqual(functions(rep)["work"]["calls"], 200)
        names = {t["name"] for t in rep["profile"]["threads"]}
        for i in range(4):
            self.assertIn(f"loader-{i}", names)

    def test_name_thread_names_the_calling_thread(self):
        perfopt.reset_profile()
        out = []

        def run():
            perfopt.name_thread("renamed")
            with perfopt.zone("t"):
                pass
            out.append(1)

        t = threading.Thread(target=run)
        t.start()
        t.join()
        self.assertEqual(out, [1])
        self.assertIn("renamed", {t["name"] for t in report()["profile"]["threads"]})


if __name__ == "__main__":
    unittest.main()
