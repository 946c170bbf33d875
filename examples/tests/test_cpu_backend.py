"""CPU backend checks for the seed's "CPU Backend Test" task: the CPU computes, threads agree."""
import concurrent.futures
import math
import os
import unittest


def sum_of_squares(n):
    return sum(i * i for i in range(n))


class CpuBackendTest(unittest.TestCase):
    def test_cpu_is_present(self):
        self.assertGreaterEqual(os.cpu_count() or 0, 1)

    def test_two_threads_agree(self):
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(sum_of_squares, [20000] * 4))
        self.assertEqual(results, [sum_of_squares(20000)] * 4)

    def test_float_summation_is_exact(self):
        self.assertEqual(math.fsum([0.1] * 10), 1.0)


if __name__ == "__main__":
    unittest.main()
